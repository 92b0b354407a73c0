// A library that cannot be loaded: it needs a symbol nothing defines (dlopen with RTLD_NOW fails).
extern "C" int bevt_test_symbol_that_does_not_exist(int);
extern "C" int bevt_broken_entry(int x) { return bevt_test_symbol_that_does_not_exist(x); }
