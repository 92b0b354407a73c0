// Any text given to the experiment-file parser and validator must end in a Config or a UserError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bevt/config.h"
#include "bevt/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    bevt::Config c = bevt::Config::from_toml(text, "fuzz.toml");
    for (const auto& k : c.keys()) {
      (void)c.where(k);
      if (c.type_of(k) == bevt::ValueType::Table) (void)c.get_table(k).keys();
    }
    c.validate({bevt::key("embed_dim", 96, ""), bevt::key("depths", std::vector<int64_t>{2, 2}, ""),
                bevt::key("lr", 0.1, ""), bevt::key("name", "x", ""), bevt::key("flag", false, "")},
               {"plugin"});
    (void)c.get_int("embed_dim");
    (void)c.get_int_list("depths");
    (void)c.to_toml();
  } catch (const bevt::UserError&) {
  }
  return 0;
}
