#include "common/config_reader.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tokenwatch::config {

// User text quoted in a message: one line, printable, not too long.
std::string Quote(absl::string_view text) {
  constexpr size_t kMaxShown = 60;
  std::string escaped = absl::CHexEscape(text.substr(0, kMaxShown));
  if (text.size() > kMaxShown) absl::StrAppend(&escaped, "...");
  return absl::StrCat("'", escaped, "'");
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return absl::StrCat("a string (", Quote(node.Scalar()), ")");
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// 1-based line of `node`, or `fallback` when yaml-cpp has no position.
int LineOf(const YAML::Node& node, int fallback) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? fallback : mark.line + 1;
}

// RFC 9110 "token" characters, the alphabet of methods and header names.
bool IsToken(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr || c == '\0') {
      return false;
    }
  }
  return true;
}

// "ip", "ip:port", "[v6]:port" or "v6" -> canonical text (inet_ntop form),
// so that "[::0001]:80" and "[::1]:80" name the same socket.
std::optional<std::string> NormalizeAddress(absl::string_view text) {
  absl::string_view host = text;
  absl::string_view port;
  bool v6 = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
    v6 = true;
  } else {
    const size_t colons = std::count(text.begin(), text.end(), ':');
    if (colons == 1) {
      const size_t colon = text.find(':');
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    } else if (colons > 1) {
      v6 = true;
    }
  }
  std::string result;
  char buf[INET6_ADDRSTRLEN] = {};
  const std::string host_str(host);
  if (v6) {
    in6_addr addr;
    if (inet_pton(AF_INET6, host_str.c_str(), &addr) != 1) return std::nullopt;
    if (inet_ntop(AF_INET6, &addr, buf, sizeof(buf)) == nullptr) {
      return std::nullopt;
    }
    result = port.empty() ? std::string(buf) : absl::StrCat("[", buf, "]");
  } else {
    in_addr addr;
    if (inet_pton(AF_INET, host_str.c_str(), &addr) != 1) return std::nullopt;
    if (inet_ntop(AF_INET, &addr, buf, sizeof(buf)) == nullptr) {
      return std::nullopt;
    }
    result = buf;
  }
  if (!port.empty()) {
    uint32_t port_number = 0;
    for (char c : port) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return std::nullopt;
      }
    }
    if (port.size() > 5 || !absl::SimpleAtoi(port, &port_number) ||
        port_number == 0 || port_number > 65535) {
      return std::nullopt;
    }
    absl::StrAppend(&result, ":", port_number);
  }
  return result;
}

// Digits only: YAML's "0x10", "1e3", "+5" and "5.0" are not accepted where a
// count is expected.
bool ParseUnsigned(absl::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, &out);
}

absl::Status YamlReader::Fail(const Value& v, absl::string_view what) const {
  return absl::InvalidArgumentError(
      absl::StrCat(file_, ":", v.line, ": key '", v.path, "': ", what));
}

absl::Status YamlReader::WrongType(const Value& v,
                                   absl::string_view expected) const {
  return Fail(v,
              absl::StrCat("expected ", expected, ", got ", Describe(v.node)));
}

std::string YamlReader::ChildPath(absl::string_view parent,
                                  absl::string_view key) {
  if (parent.empty()) return std::string(key);
  return absl::StrCat(parent, ".", key);
}

// A null map (a section whose keys are all commented out) is empty.
absl::Status YamlReader::ReadMap(
    const Value& v, const std::vector<Field>& fields,
    const std::vector<absl::string_view>& required) {
  if (!v.node.IsNull() && !v.node.IsMap()) return WrongType(v, "a map");
  std::map<std::string, int, std::less<>> seen;  // key -> line
  if (v.node.IsMap()) {
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
      // yaml-cpp's iterator yields a temporary pair: copy, don't bind.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      const int key_line = LineOf(key, v.line);
      if (!key.IsScalar()) {
        return Fail(
            Value{key, v.path, key_line},
            absl::StrCat("keys must be plain strings, got ", Describe(key)));
      }
      const std::string name = key.Scalar();
      const Value child{value, ChildPath(v.path, absl::CHexEscape(name)),
                        key_line};
      auto [previous, inserted] = seen.emplace(name, key_line);
      if (!inserted) {
        return Fail(child, absl::StrCat("duplicate key (first at line ",
                                        previous->second, ")"));
      }
      const Field* field = nullptr;
      for (const Field& f : fields) {
        if (f.name == name) field = &f;
      }
      if (field == nullptr) {
        std::vector<absl::string_view> names;
        for (const Field& f : fields) names.push_back(f.name);
        return Fail(child, absl::StrCat("unknown key (expected one of: ",
                                        absl::StrJoin(names, ", "), ")"));
      }
      if (absl::Status s = field->read(child); !s.ok()) return s;
    }
  }
  for (absl::string_view name : required) {
    if (seen.find(name) == seen.end()) {
      return Fail(Value{v.node, ChildPath(v.path, name), v.line},
                  "required key is missing");
    }
  }
  return absl::OkStatus();
}

// A null list (`services:` with nothing under it) is empty.
absl::Status YamlReader::ReadList(
    const Value& v, const std::function<absl::Status(const Value&)>& each) {
  if (v.node.IsNull()) return absl::OkStatus();
  if (!v.node.IsSequence()) return WrongType(v, "a list");
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    if (absl::Status s = each(Value{item, absl::StrCat(v.path, "[", i, "]"),
                                    LineOf(item, v.line)});
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// Items of a list of maps: unlike a section, an empty item is a mistake.
absl::Status YamlReader::ReadListOfMaps(
    const Value& v, const std::function<absl::Status(const Value&)>& each) {
  return ReadList(v, [&](const Value& item) {
    if (!item.node.IsMap()) return WrongType(item, "a map");
    return each(item);
  });
}

absl::Status YamlReader::ReadString(const Value& v, std::string& out) {
  if (!v.node.IsScalar()) return WrongType(v, "a string");
  out = v.node.Scalar();
  return absl::OkStatus();
}

absl::Status YamlReader::ReadNonEmptyString(const Value& v, std::string& out) {
  if (absl::Status s = ReadString(v, out); !s.ok()) return s;
  if (out.empty()) return Fail(v, "must not be empty");
  return absl::OkStatus();
}

absl::Status YamlReader::ReadStringList(const Value& v,
                                        std::vector<std::string>& out) {
  out.clear();
  return ReadList(v, [&](const Value& item) {
    return ReadNonEmptyString(item, out.emplace_back());
  });
}

std::string YamlReader::Resolve(const std::string& path) const {
  if (path.empty()) return path;
  std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  return (base_dir_ / p).lexically_normal().string();
}

// A file named in the config; relative to the folder holding the config.
absl::Status YamlReader::ReadPath(const Value& v, std::string& out) {
  if (absl::Status s = ReadString(v, out); !s.ok()) return s;
  out = Resolve(out);
  return absl::OkStatus();
}

// A file whose contents are checked at start-up, remembering where it
// was named so those errors can say so.
absl::Status YamlReader::ReadFileSetting(const Value& v, FileSetting& out) {
  std::string path;
  if (absl::Status s = ReadNonEmptyString(v, path); !s.ok()) return s;
  out.path = Resolve(path);
  out.where = absl::StrCat(file_, ":", v.line, ": key '", v.path, "'");
  return absl::OkStatus();
}

// Like ReadPath, but "-" (stdout) stays "-".
absl::Status YamlReader::ReadOutput(const Value& v, std::string& out) {
  if (absl::Status s = ReadString(v, out); !s.ok()) return s;
  if (out != "-") out = Resolve(out);
  return absl::OkStatus();
}

absl::Status YamlReader::ReadDuration(const Value& v, absl::Duration& out,
                                      bool allow_zero) {
  std::string text;
  if (absl::Status s = ReadString(v, text); !s.ok()) {
    return WrongType(v, "a duration like 30s, 5m, 1h30m or 2d");
  }
  absl::StatusOr<absl::Duration> parsed = ParseDuration(text);
  if (!parsed.ok()) return Fail(v, parsed.status().message());
  if (!allow_zero && *parsed == absl::ZeroDuration()) {
    return Fail(v, "must be longer than 0s");
  }
  out = *parsed;
  return absl::OkStatus();
}

absl::Status YamlReader::ReadCount(const Value& v, uint64_t min, uint64_t max,
                                   uint64_t& out) {
  const std::string expected =
      max == std::numeric_limits<uint64_t>::max()
          ? absl::StrCat("an integer of at least ", min)
          : absl::StrCat("an integer from ", min, " to ", max);
  if (!v.node.IsScalar()) return WrongType(v, expected);
  uint64_t n = 0;
  if (!ParseUnsigned(v.node.Scalar(), n) || n < min || n > max) {
    return WrongType(v, expected);
  }
  out = n;
  return absl::OkStatus();
}

absl::Status YamlReader::ReadBool(const Value& v, bool& out) {
  if (v.node.IsScalar() &&
      (v.node.Scalar() == "true" || v.node.Scalar() == "false")) {
    out = v.node.Scalar() == "true";
    return absl::OkStatus();
  }
  return WrongType(v, "true or false");
}

}  // namespace tokenwatch::config
