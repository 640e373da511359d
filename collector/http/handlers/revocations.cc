#include "collector/http/handlers/revocations.h"

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "simdjson.h"

namespace tokenwatch::collector::http {
namespace {

// The revocations file holds one jti per line and `#` starts a comment:
// a jti with a line break, a control character or `#` would write lines
// of the attacker's choosing (or hide the rest of the line), and leading or
// trailing blanks would not survive the file's trimming.
constexpr size_t kMaxJtiBytes = 1024;

const char* JtiProblem(std::string_view jti) {
  if (jti.empty()) return "empty jti";
  if (jti.size() > kMaxJtiBytes) return "jti longer than 1024 bytes";
  for (unsigned char c : jti) {
    if (c < 0x20 || c == 0x7f) {
      return "jti holds a control character (line break, tab, ...)";
    }
    if (c == '#') return "jti holds '#' (the revocations file's comment)";
  }
  if (jti.front() == ' ' || jti.back() == ' ') {
    return "jti starts or ends with a space";
  }
  return nullptr;
}

}  // namespace

std::variant<std::vector<std::string>, Response> ParseJtis(
    const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root) != simdjson::SUCCESS) {
    return ErrorResponse(400, "body is not valid JSON");
  }
  simdjson::dom::array list;
  if (root.is_object()) {
    if (root["jtis"].get_array().get(list) != simdjson::SUCCESS) {
      return ErrorResponse(400, "expected {\"jtis\":[\"jti\",...]}");
    }
  } else if (root.get_array().get(list) != simdjson::SUCCESS) {
    return ErrorResponse(400,
                         "expected a JSON list of jti strings, or "
                         "{\"jtis\":[...]}");
  }
  std::vector<std::string> jtis;
  jtis.reserve(list.size());
  for (simdjson::dom::element item : list) {
    std::string_view jti;
    if (item.get_string().get(jti) != simdjson::SUCCESS) {
      return ErrorResponse(400, "every jti must be a string");
    }
    if (const char* problem = JtiProblem(jti)) {
      return ErrorResponse(400, problem);
    }
    jtis.emplace_back(jti);
  }
  return jtis;
}

Route RevocationsRoute(Revoke revoke) {
  Route r{"POST", "/api/v1/revocations"};
  r.write = true;
  r.handler = [revoke = std::move(revoke)](const Request& request) {
    std::variant<std::vector<std::string>, Response> jtis =
        ParseJtis(request.body);
    if (auto* error = std::get_if<Response>(&jtis)) return std::move(*error);
    const auto& list = std::get<std::vector<std::string>>(jtis);
    absl::Status status = revoke(list);
    if (!status.ok()) return StatusResponse(status);
    return JsonResponse(absl::StrCat("{\"revoked\":", list.size(), "}"));
  };
  return r;
}

}  // namespace tokenwatch::collector::http
