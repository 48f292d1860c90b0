import Foundation
import Testing

/// Eight containers at once on one image, each its own layer, half shifted on disk and half
/// idmapped, all in the user namespace; afterwards `strata check` finds nothing wrong and
/// nothing but the driver's home is left mounted. (In the serialized suite: on two cores the
/// eight must not also share them with the other tests.)
extension RuntimeTests {
    static let eight = 8
    /// Seconds each container waits before it exits, so that all eight are running together.
    static let eightPause = 3

    @Test("eight user-namespaced containers at once on one image, then a clean store", arguments: OCIRuntime.allCases)
    func eightAtOnce(runtime: OCIRuntime) throws {
        try #require(runtime.isInstalled, "\(runtime.path) is missing (Debian package \(runtime.rawValue))")
        let store = try storeWithImage()
        let flows: [Flow] = (0..<Self.eight).map { $0 % 2 == 0 ? .shifted : .idmapped }

        // Each container has its own thread: create and mount, wait for the others, then run
        // (the script ends with a pause, so the eight runs overlap), then unmount.
        let outcomes = Outcomes()
        let prepared = DispatchGroup(), finished = DispatchGroup()
        let go = DispatchSemaphore(value: 0)
        for index in 0..<Self.eight {
            prepared.enter()
            finished.enter()
            let thread = Thread {
                var container = TestContainer(store: store, name: "c\(index)", flow: flows[index], runtime: runtime)
                do {
                    do {
                        try container.prepare(image: "image")
                    } catch {
                        prepared.leave()
                        throw error
                    }
                    prepared.leave()
                    go.wait()
                    let start = Date()
                    let result = try container.run(tag: "-\(index)", pause: Self.eightPause)
                    let end = Date()
                    let unmount = try store.strata(["unmount", container.name])
                    outcomes.set(index, .success(Outcome(result: result, unmount: unmount, start: start, end: end)))
                } catch {
                    outcomes.set(index, .failure(error))
                }
                finished.leave()
            }
            thread.start()
        }
        prepared.wait()
        for _ in 0..<Self.eight { go.signal() }
        finished.wait()

        var starts: [Date] = [], ends: [Date] = []
        for index in 0..<Self.eight {
            switch outcomes.get(index) {
            case .success(let outcome):
                let (result, unmount) = (outcome.result, outcome.unmount)
                #expect(result.status == 0, "container c\(index) (\(flows[index])): \(result)")
                #expect(unmount.status == 0, "unmount c\(index): \(unmount)")
                guard result.status == 0 else { continue }
                starts.append(outcome.start)
                ends.append(outcome.end)
                let report = ContainerScript.Report(result.stdout)
                #expect(report.id.hasPrefix("uid=0(root) gid=0(root)"), "c\(index) id printed \(report.id)")
                #expect(report.ok.contains("newtop"), "c\(index) touch /newtop: \(result.stderr)")
                #expect(report.ok == Set(ContainerScript.steps),
                        "c\(index) failed steps \(report.failed.sorted()): \(result.stderr)")
                // Each container read back its own write, not another's.
                #expect(report.lines.last == "root-\(index)", "c\(index) read \(report.lines.last ?? "nothing")")
            case .failure(let error):
                Issue.record(error, "container c\(index) (\(flows[index]))")
            case nil:
                Issue.record("container c\(index) reported nothing")
            }
        }

        // The eight runs were at once (when all ran): the last to start began before the first ended.
        if let lastStart = starts.max(), let firstEnd = ends.min(), starts.count == Self.eight {
            #expect(lastStart < firstEnd, "the runs did not overlap: last start \(lastStart), first end \(firstEnd)")
        }

        let check = try store.strata(["check"])
        #expect(check.status == 0, "strata check: \(check.stdout) \(check.stderr)")
        #expect(check.stdout.contains("0 problem(s) found"), "strata check printed \(check.stdout)")
        #expect(store.leftoverMounts().isEmpty, "left mounted: \(store.leftoverMounts())")
        let findmnt = try runProgram("/usr/bin/findmnt", ["-rn", "-o", "TARGET"])
        let listed = findmnt.stdout.split(separator: "\n").filter { $0.hasPrefix(store.dir) && $0 != store.root + "/overlay" }
        #expect(findmnt.status == 0 && listed.isEmpty, "findmnt lists mounts under \(store.dir): \(listed)")
        #expect(try runtime.listed(stateRoot: store.runtimeState).isEmpty)
    }
}

/// What one container's thread saw: its run, its unmount, and when the run began and ended.
struct Outcome {
    var result: ProgramResult
    var unmount: ProgramResult
    var start: Date
    var end: Date
}

/// Results written by concurrent workers, read after they are done.
final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Result<Outcome, any Error>] = [:]
    func set(_ index: Int, _ value: Result<Outcome, any Error>) {
        lock.lock(); defer { lock.unlock() }
        values[index] = value
    }
    func get(_ index: Int) -> Result<Outcome, any Error>? {
        lock.lock(); defer { lock.unlock() }
        return values[index]
    }
}
