import Testing
@testable import TestTiers

/// Host-tier checks of the probes' parsing (no kernel features needed).
struct MountTableTests {
    @Test func parsesMountinfoWithOptionalFieldsAndEscapes() {
        let text = """
        36 35 98:0 / /mnt/scratch\\040dir rw,noatime master:1 - xfs /dev/ubda rw,attr2,inode64,prjquota
        37 35 0:5 / /dev/shm rw,nosuid shared:2 - tmpfs tmpfs rw,seclabel
        """
        let mounts = MountTable.parse(text)
        #expect(mounts.count == 2)
        #expect(mounts[0].mountPoint == "/mnt/scratch dir")
        #expect(mounts[0].fileSystemType == "xfs")
        #expect(mounts[0].source == "/dev/ubda")
        #expect(mounts[0].hasOption("prjquota"))
        #expect(XFSProjectQuota.enforcesProjectQuota(mounts[0]))
        #expect(!XFSProjectQuota.enforcesProjectQuota(mounts[1]))
    }

    @Test func accountingOnlyProjectQuotaDoesNotCount() {
        let mounts = MountTable.parse("40 35 98:0 / /x rw - xfs /dev/ubdb rw,pqnoenforce")
        #expect(!XFSProjectQuota.enforcesProjectQuota(mounts[0]))
    }

    @Test func availabilityExplainsItself() {
        for feature in KernelFeature.allCases {
            switch feature.availability {
            case .available(let how): #expect(!how.isEmpty)
            case .unavailable(let why): #expect(!why.isEmpty)
            }
        }
    }
}
