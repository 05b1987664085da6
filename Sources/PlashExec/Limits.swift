#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Join the cgroup plash/NAME (created, or taken over from an earlier instance whose
/// processes are killed first) with the plan's limits. Limits without a name get a
/// cgroup of their own, named after this process.
/// Returns the file that counts the cgroup's OOM kills when there is a memory limit.
@discardableResult
public func enterCgroup(_ plan: ExecPlan, store: String) throws -> String? {
    guard plan.cgroup != nil || !plan.limits.isEmpty else { return nil }
    let name = plan.cgroup ?? "pid-\(getpid())"
    let layout = StoreLayout(path: store)
    let hierarchy = try CgroupHierarchy.current()
    if plan.cgroup == nil {
        removeEmptyRecordedCgroups(store: layout, hierarchy: hierarchy, names: endedPidCgroups(store: layout))
    }
    recordCgroup(name, store: layout)
    let cgroup = Cgroup(name, hierarchy: hierarchy)
    do {
        try cgroup.enter(limits: plan.limits)
    } catch let error as PlashError where error.errno == EROFS {
        throw error.advising(cgroupsReadOnly)
    }
    return plan.limits.memory == nil ? nil : cgroup.oomCounter
}

/// The line `--pid-ns` prints when the memory limit killed the program: the shell's
/// `Killed` alone does not say why.
func oomLine(_ program: String, command: [String], limit: UInt64) -> String {
    let units: [(String, Int)] = [("T", 40), ("G", 30), ("M", 20), ("K", 10)]
    let size = units.first { limit % (1 << $0.1) == 0 }.map { "\(limit >> UInt64($0.1))\($0.0)" } ?? "\(limit)"
    return "\(program): \(oneLine(command.first ?? "")): killed by the memory limit (--memory \(size))\n"
}
