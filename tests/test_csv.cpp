// CSV as RFC 4180 writes it: fields with commas, quotes and line breaks are quoted and round-trip.
#include <gtest/gtest.h>

#include "bevt/csv.h"

TEST(Csv, FieldsAreQuotedOnlyWhenTheyMustBe) {
  EXPECT_EQ(bevt::csv_field("disc"), "disc");
  EXPECT_EQ(bevt::csv_field(""), "");
  EXPECT_EQ(bevt::csv_field("pull, then push"), "\"pull, then push\"");
  EXPECT_EQ(bevt::csv_field("\"open\" door"), "\"\"\"open\"\" door\"");
  EXPECT_EQ(bevt::csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(bevt::csv_row({"true\\pred", "a,b", "c"}), "true\\pred,\"a,b\",c");
}

TEST(Csv, ClassNamesWithCommasAndQuotesRoundTrip) {
  const std::vector<std::string> names{"motion/left", "pull, then push", "\"open\" door", "", "a\"\"b", ","};
  EXPECT_EQ(bevt::parse_csv_row(bevt::csv_row(names)), names);
  EXPECT_EQ(bevt::parse_csv_row(bevt::csv_row(names) + "\r"), names);  // a CRLF line end
  EXPECT_EQ(bevt::parse_csv_row("a,,b"), (std::vector<std::string>{"a", "", "b"}));
}
