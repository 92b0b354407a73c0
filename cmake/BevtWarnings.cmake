# Warnings on for our own code; third-party headers are included as SYSTEM so they stay quiet.
add_library(bevt_warnings INTERFACE)
target_compile_options(bevt_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Woverloaded-virtual -Wno-unused-parameter)
