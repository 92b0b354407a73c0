// safetensors: round trips of every dtype, and malformed files rejected with one clear error.
#include <gtest/gtest.h>

#include "bevt/error.h"
#include "bevt/safetensors.h"
#include "test_sandbox.h"

namespace t = bevt::test;
using bevt::UserError;

namespace {
std::string bytes_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string load_error(const std::string& name, const std::string& content) {
  auto d = t::temp_dir("st_bad");
  auto p = d / name;
  t::write_file(p, content);
  try {
    bevt::load_safetensors(p.string());
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}
}  // namespace

TEST(Safetensors, RoundTripEveryDtype) {
  auto d = t::temp_dir("st_rt");
  bevt::TensorMap m;
  m["f32"] = torch::randn({2, 3});
  m["f64"] = torch::randn({4}, torch::kFloat64);
  m["f16"] = torch::randn({3, 1}).to(torch::kFloat16);
  m["bf16"] = torch::randn({5}).to(torch::kBFloat16);
  m["i64"] = torch::arange(6, torch::kInt64).reshape({2, 3});
  m["i32"] = torch::arange(3, torch::kInt32);
  m["u8"] = torch::arange(7, torch::kUInt8);
  m["bool"] = torch::tensor({true, false, true});
  m["scalar"] = torch::tensor(3.5f);
  m["empty"] = torch::zeros({0, 4});
  m["noncontig"] = torch::randn({4, 3}).t();
  auto p = (d / "x.safetensors").string();
  bevt::save_safetensors(p, m, {{"format", "pt"}, {"note", "hello"}});
  auto f = bevt::load_safetensors(p);
  EXPECT_EQ(f.metadata.at("note"), "hello");
  ASSERT_EQ(f.tensors.size(), m.size());
  for (const auto& [k, v] : m) {
    const auto& got = f.tensors.at(k);
    EXPECT_EQ(got.scalar_type(), v.scalar_type()) << k;
    EXPECT_EQ(got.sizes(), v.sizes()) << k;
    EXPECT_TRUE(torch::equal(got, v)) << k;
  }
  // Loaded tensors are copy-on-write views: writing to one never changes the file.
  f.tensors.at("f32").add_(1);
  auto again = bevt::load_safetensors(p);
  EXPECT_TRUE(torch::equal(again.tensors.at("f32"), m["f32"]));
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp." + std::to_string(getpid())));
}

TEST(Safetensors, ReadsTheFixtures) {
  auto f = bevt::load_safetensors(std::string(BEVT_FIXTURES_DIR) + "/dalle_encoder/output.safetensors");
  EXPECT_EQ(f.tensors.at("tokens").scalar_type(), torch::kInt64);
  EXPECT_EQ(f.tensors.at("logits").sizes(), (std::vector<int64_t>{2, 512, 8, 8}));
}

TEST(Safetensors, MalformedFilesAreCleanErrors) {
  std::string ok_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string data(8, '\0');
  struct Case {
    std::string name, content, expect;
  } cases[] = {
      {"empty", "", "shorter than the 8-byte header length"},
      {"short", "abc", "shorter than the 8-byte header length"},
      {"header_past_end", bytes_file(ok_header, data).substr(0, 20), "runs past the end"},
      {"truncated_data", bytes_file(ok_header, data.substr(0, 4)), "past the 4-byte data block"},
      {"huge_header", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "exceeds the 100 MiB limit"},
      {"not_json", bytes_file("{not json", data), "header is not JSON"},
      {"not_object", bytes_file("[1,2]", ""), "not a JSON object"},
      {"bad_dtype", bytes_file(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", data),
       "unsupported dtype 'F33'"},
      {"size_mismatch", bytes_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data),
       "need 12"},
      {"overlap",
       bytes_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  data),
       "overlaps"},
      {"out_of_range", bytes_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data),
       "past the 8-byte data block"},
      {"reversed", bytes_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data), "after end"},
      {"negative_shape", bytes_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data),
       "not a non-negative integer"},
      {"overflow_shape",
       bytes_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", data),
       "overflows"},
      {"gap", bytes_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data), "gap of 4 bytes"},
      {"trailing", bytes_file(ok_header, data + "xx"), "2 bytes after the last tensor"},
      {"bad_bool", bytes_file(R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", std::string(1, '\x05')),
       "not 0/1"},
      {"bad_metadata", bytes_file(R"({"__metadata__":{"a":1}})", ""), "is not a string"},
  };
  for (const auto& c : cases) {
    std::string e = load_error(c.name + ".safetensors", c.content);
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.name << ": " << e;
    EXPECT_NE(e.find(c.name + ".safetensors"), std::string::npos) << c.name << ": " << e;
  }
  EXPECT_NE(load_error("x", "").find("x"), std::string::npos);
  try {
    bevt::load_safetensors("/nonexistent/file.safetensors");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
  }
}

TEST(Safetensors, FailedWriteKeepsTheOldFile) {
  auto d = t::temp_dir("st_atomic");
  auto p = (d / "w.safetensors").string();
  bevt::save_safetensors(p, {{"a", torch::ones({2})}});
  bevt::TensorMap bad{{"a", torch::ones({2})}, {"b", torch::Tensor()}};
  EXPECT_THROW(bevt::save_safetensors(p, bad), UserError);
  auto f = bevt::load_safetensors(p);
  EXPECT_EQ(f.tensors.size(), 1u);
  EXPECT_THROW(bevt::save_safetensors((d / "no" / "such" / "dir.safetensors").string(), {{"a", torch::ones({1})}}),
               UserError);
}
