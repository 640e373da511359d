// Path globs of sensitive_endpoints: `*` matches one segment, `**` zero or
// more, so "/v1/refunds/**" matches "/v1/refunds" and "/v1/refunds/a/b".
#ifndef TOKENWATCH_COLLECTOR_DETECT_PATH_GLOB_H_
#define TOKENWATCH_COLLECTOR_DETECT_PATH_GLOB_H_

#include <string_view>

namespace tokenwatch::collector {

bool PathGlobMatches(std::string_view pattern, std::string_view path);

}  // namespace tokenwatch::collector

#endif  // TOKENWATCH_COLLECTOR_DETECT_PATH_GLOB_H_
