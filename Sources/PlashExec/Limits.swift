#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Join the cgroup plash/NAME (created, or taken over from an earlier instance whose
/// processes are killed first) with the plan's limits. Limits without a name get a
/// cgroup of their own, named after this process.
public func enterCgroup(_ plan: ExecPlan, store: String) throws {
    guard plan.cgroup != nil || !plan.limits.isEmpty else { return }
    let name = plan.cgroup ?? "pid-\(getpid())"
    recordCgroup(name, store: StoreLayout(path: store))
    do {
        try Cgroup(name, hierarchy: try CgroupHierarchy.current()).enter(limits: plan.limits)
    } catch let error as PlashError where error.errno == EROFS {
        throw error.advising(cgroupsReadOnly)
    }
}
