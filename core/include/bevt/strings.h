// Small string helpers the host and plugins share: nearest-name suggestions for "did you mean" errors.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bevt {

// Levenshtein distance (insert, delete, substitute), case-sensitive.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `name`, or "" when none is close enough to be a plausible typo.
std::string nearest_name(std::string_view name, const std::vector<std::string>& candidates);

// ", did you mean 'x'?" or "" — ready to append to an error message.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

// "a.b.c" → {"a", "b", "c"}; an empty string gives one empty part.
std::vector<std::string> split(std::string_view s, char sep);

inline bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace bevt

namespace bevt {
// The first line of a possibly multi-line message (torch's errors carry backtraces): for one-line errors.
std::string first_line(std::string_view message);
}  // namespace bevt
