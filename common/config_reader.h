// The generic half of the config loader (common/config.cc): a YAML value
// with the file, line and key path a message must name, and readers for
// the shapes every section uses (maps of known keys, lists, strings, paths
// relative to the config's folder, durations, counts). Errors are
// InvalidArgument "FILE:LINE: key 'a.b': why". Internal to the loader.
#ifndef TOKENWATCH_COMMON_CONFIG_READER_H_
#define TOKENWATCH_COMMON_CONFIG_READER_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "yaml-cpp/yaml.h"

namespace tokenwatch::config {

// User text quoted in a message: one line, printable, not too long.
std::string Quote(absl::string_view text);

// What a node is, for "expected X, got Y" messages.
std::string Describe(const YAML::Node& node);

// 1-based line of `node`, or `fallback` when yaml-cpp has no position.
int LineOf(const YAML::Node& node, int fallback);

// RFC 9110 "token" characters, the alphabet of methods and header names.
bool IsToken(absl::string_view text);

// "ip", "ip:port", "[v6]:port" or "v6" -> canonical text (inet_ntop form),
// so that "[::0001]:80" and "[::1]:80" name the same socket.
std::optional<std::string> NormalizeAddress(absl::string_view text);

// Digits only: YAML's "0x10", "1e3", "+5" and "5.0" are not accepted where a
// count is expected.
bool ParseUnsigned(absl::string_view text, uint64_t& out);

// One value in the document, with what a message needs to name it.
struct Value {
  YAML::Node node;
  std::string path;  // "services[0].match.hosts"
  int line;          // 1-based; for a map entry, the line of its key
};

struct Field {
  absl::string_view name;
  std::function<absl::Status(const Value&)> read;
};

// Reads values of a document that came from `file`; relative paths are
// resolved against `base_dir`. The section readers derive from it.
class YamlReader {
 protected:
  YamlReader(std::string file, std::filesystem::path base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  absl::Status Fail(const Value& v, absl::string_view what) const;

  absl::Status WrongType(const Value& v, absl::string_view expected) const;

  static std::string ChildPath(absl::string_view parent, absl::string_view key);

  // A null map (a section whose keys are all commented out) is empty.
  absl::Status ReadMap(const Value& v, const std::vector<Field>& fields,
                       const std::vector<absl::string_view>& required = {});

  // A null list (`services:` with nothing under it) is empty.
  absl::Status ReadList(const Value& v,
                        const std::function<absl::Status(const Value&)>& each);

  // Items of a list of maps: unlike a section, an empty item is a mistake.
  absl::Status ReadListOfMaps(
      const Value& v, const std::function<absl::Status(const Value&)>& each);

  absl::Status ReadString(const Value& v, std::string& out);

  absl::Status ReadNonEmptyString(const Value& v, std::string& out);

  absl::Status ReadStringList(const Value& v, std::vector<std::string>& out);

  std::string Resolve(const std::string& path) const;

  // A file named in the config; relative to the folder holding the config.
  absl::Status ReadPath(const Value& v, std::string& out);

  // A file whose contents are checked at start-up, remembering where it
  // was named so those errors can say so.
  absl::Status ReadFileSetting(const Value& v, FileSetting& out);

  // Like ReadPath, but "-" (stdout) stays "-".
  absl::Status ReadOutput(const Value& v, std::string& out);

  absl::Status ReadDuration(const Value& v, absl::Duration& out,
                            bool allow_zero);

  absl::Status ReadCount(const Value& v, uint64_t min, uint64_t max,
                         uint64_t& out);

  // true or false, nothing else (no yes/no/on/off).
  absl::Status ReadBool(const Value& v, bool& out);

  std::string file_;
  std::filesystem::path base_dir_;
};

}  // namespace tokenwatch::config

#endif  // TOKENWATCH_COMMON_CONFIG_READER_H_
