import Foundation
@testable import Overlay
import Testing

@Suite("Process stamps")
struct ProcessStampTests {
    @Test("this process's stamp reads back and is alive; the same pid with another start time is not")
    func currentStampIsAlive() throws {
        let current = ProcessStamp.current
        #expect(current.pid == getpid())
        let read = try #require(ProcessStamp(current.description + "\n"))
        #expect(read == current)
        #expect(read.isAlive)
        #expect(ProcessStamp.isAlive(current.description))
        let reused = try #require(ProcessStamp("\(current.pid) \(current.startTime)0"))
        #expect(!reused.isAlive, "a pid reused by a later process is not the stamped one")
    }

    @Test("a stamp of a process that ended is not alive; text that is no stamp names no process")
    func endedAndMalformed() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let ended = try #require(ProcessStamp("\(child.processIdentifier) 1"))
        #expect(!ended.isAlive)
        #expect(!ProcessStamp.pidExists(child.processIdentifier))
        #expect(ProcessStamp.pidExists(getpid()))
        for text in ["", "12", "x 5", "1 2 3"] {
            #expect(ProcessStamp(text) == nil, "'\(text)'")
            #expect(!ProcessStamp.isAlive(text))
        }
    }
}
