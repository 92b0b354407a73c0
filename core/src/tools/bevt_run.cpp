// bevt-run: composes an experiment from plugins by name and runs it (bevt_run_main.cpp).
#include "bevt_run_main.h"

int main(int argc, char** argv) { return bevt::tools::run_main(argc, argv); }
