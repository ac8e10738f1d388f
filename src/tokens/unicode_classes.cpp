#include "tokens/unicode_classes.hpp"

namespace orchestra::tokens {

namespace unicode_detail {
#include "tokens/unicode_classes_table.inc"
}  // namespace unicode_detail

const char* UnicodeVersion() {
  return unicode_detail::kUnicodeVersion;
}

}  // namespace orchestra::tokens
