// CSV as RFC 4180 writes it, for every CSV bevt produces (confusion matrices, report tables) and reads back:
// a field holding a comma, a double quote, CR or LF is quoted, with its quotes doubled, so class names such as
// `pull, then push` or `"open" door` round-trip.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bevt {

std::string csv_field(std::string_view s);
// The fields joined with commas, each as csv_field writes it (no line end).
std::string csv_row(const std::vector<std::string>& fields);
// The fields of one record given without its line end (a trailing CR is dropped).
std::vector<std::string> parse_csv_row(std::string_view line);

}  // namespace bevt
