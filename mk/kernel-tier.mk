# The kernel tier: the Swift Testing suites that need XFS project quotas or SELinux, run inside a
# user-mode-linux guest whose kernel has them (scripts/kernel-tier/run boots it once).
#
#   make -f mk/kernel-tier.mk kernel-test          # on its own
#   include mk/kernel-tier.mk                      # from the main Makefile; then `make kernel-test`
#
# Variables: SWIFT, SWIFT_BUILD_FLAGS, KERNEL_TIER_FILTERS (Swift Testing --filter patterns: the
# suites of the kernel tier), KERNEL_TIER_RUN_FLAGS (runner options, e.g. --mem 2G --keep).

SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=
KERNEL_TIER_BUILD_DIR ?= .build
KERNEL_TIER_BUNDLE ?= $(KERNEL_TIER_BUILD_DIR)/debug/StrataPackageTests.xctest
# Regular expressions over test IDs, which start with the test target's name: the quota and SELinux
# test targets, and any suite with "KernelTier" in its name (e.g. OverlayTests.OverlayKernelTierTests).
# Keep in step with defaultFilters in Plugins/KernelTest/KernelTest.swift.
KERNEL_TIER_FILTERS ?= KernelTier ^ProjectQuotaTests\. ^MountLabelTests\.
KERNEL_TIER_RUN_FLAGS ?=
# What the guest needs on this machine (it sees this machine's root read-only): the UML kernel
# and its modules, XFS tools, the SELinux policy compiler, insmod, jq for the runner's counting;
# containerd, runc, umoci and busybox-static for the snapshotter's container tests in the guest.
KERNEL_TIER_PACKAGES ?= user-mode-linux xfsprogs secilc selinux-utils policycoreutils kmod jq iproute2 \
                        containerd runc umoci busybox-static

.PHONY: kernel-test kernel-tier-deps kernel-tier-build kernel-tier-run

# A chain, so that `make -j` still installs, then builds, then runs.
kernel-test: kernel-tier-run
kernel-tier-run: kernel-tier-build
kernel-tier-build: kernel-tier-deps

# dpkg-query keeps this fast when everything is installed; apt-get runs only for what is missing.
kernel-tier-deps:
	@scripts/ensure-packages --label kernel-tier $(KERNEL_TIER_PACKAGES)

kernel-tier-build:
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)

kernel-tier-run:
	scripts/kernel-tier/run $(KERNEL_TIER_RUN_FLAGS) --swift-testing -- \
	    $(KERNEL_TIER_BUNDLE) --testing-library swift-testing \
	    $(foreach f,$(KERNEL_TIER_FILTERS),--filter '$(f)')
