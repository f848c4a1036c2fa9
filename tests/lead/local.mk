# Project-level tests: installation layout, host integration files.
TESTS += tests/lead/install-layout.sh
EXTRA_DIST += tests/lead/install-layout.sh
TESTS += tests/lead/hotplug-script.sh
EXTRA_DIST += tests/lead/hotplug-script.sh
