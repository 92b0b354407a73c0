# The GPU check rehearsed on the CPU: scripts/gpu_check.sh --cpu builds the bundle (build-gpu/: no media, tests
# off) with scripts/make_gpu_bundle.sh and runs the GPU machine's sequence from it, shrunk to CPU sizes, with the
# binaries' environment limited to the bundle and torch's folder.
add_test(NAME gpu_check.cpu COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/gpu_check.sh --cpu)
set_tests_properties(gpu_check.cpu PROPERTIES LABELS "integration;slow" TIMEOUT 2400
  ENVIRONMENT "OUT=${BEVT_TEST_TMP}/gpu_check")
