// bevt-run's whole command line as a function, so that bevt-test (mmaction2's tools/test.py spelling) is the
// same program with its arguments rearranged, not a second copy of it.
#pragma once

namespace bevt::tools {

int run_main(int argc, char** argv);

}  // namespace bevt::tools
