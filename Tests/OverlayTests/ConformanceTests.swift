import DriverConformance
import Testing

@Suite("Overlay driver conformance", needsRoot, .serialized)
struct ConformanceTests {
    @Test("conformance", arguments: DriverConformance.all.map(\.name))
    func conformance(_ name: String) throws {
        let check = DriverConformance.all.first { $0.name == name }!
        try check.run(overlayFactory)
    }
}
