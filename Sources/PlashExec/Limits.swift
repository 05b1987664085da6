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
    let layout = StoreLayout(path: store)
    let hierarchy = try CgroupHierarchy.current()
    if plan.cgroup == nil {
        removeEmptyRecordedCgroups(store: layout, hierarchy: hierarchy, names: endedPidCgroups(store: layout))
    }
    recordCgroup(name, store: layout)
    do {
        try Cgroup(name, hierarchy: hierarchy).enter(limits: plan.limits)
    } catch let error as PlashError where error.errno == EROFS {
        throw error.advising(cgroupsReadOnly)
    }
}
