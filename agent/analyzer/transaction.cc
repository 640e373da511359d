#include "agent/analyzer/transaction.h"

#include "common/strings.h"

namespace tokenwatch::analyzer {

std::string_view Request::Find(std::string_view name) const {
  for (size_t i = 0; i < num_headers; ++i) {
    if (util::EqualsIgnoreCase(headers[i].name, name)) return headers[i].value;
  }
  return {};
}

}  // namespace tokenwatch::analyzer
