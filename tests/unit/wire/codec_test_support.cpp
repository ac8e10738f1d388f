#include "unit/wire/codec_test_support.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace orchestra::wire::testing {
namespace {

boost::json::value PrunedImpl(const boost::json::value& value,
                              const std::vector<std::string_view>& drop) {
  if (const auto* object = value.if_object(); object != nullptr) {
    boost::json::object out;
    for (const auto& member : *object) {
      if (member.value().is_null()) continue;
      if (std::find(drop.begin(), drop.end(), member.key()) != drop.end()) continue;
      out[member.key()] = PrunedImpl(member.value(), drop);
    }
    return out;
  }
  if (const auto* array = value.if_array(); array != nullptr) {
    boost::json::array out;
    for (const auto& item : *array)
      out.push_back(PrunedImpl(item, drop));
    return out;
  }
  return value;
}

}  // namespace

std::string ReadTestdata(std::string_view relative) {
  // $ORCHESTRA_SOURCE_DIR first (orchestra_add_test sets it); the directory the test was built
  // from otherwise, so that running the binary by hand works too.
  const char* root = std::getenv("ORCHESTRA_SOURCE_DIR");
  const std::string dir = root != nullptr ? std::string(root) + "/tests/unit/providers/testdata"
                                          : std::string(ORCHESTRA_CODEC_TESTDATA_DIR);
  const std::string path = dir + "/" + std::string(relative);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

boost::json::value Json(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) {
    ADD_FAILURE() << "not JSON (" << ec.message() << "): " << text;
    return nullptr;
  }
  return value;
}

std::vector<RecordedEvent> ReadSse(std::string_view relative) {
  std::vector<RecordedEvent> events;
  std::istringstream in(ReadTestdata(relative));
  RecordedEvent current;
  bool has_data = false;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (has_data) events.push_back(current);
      current = {};
      has_data = false;
      continue;
    }
    auto value = [&](std::size_t prefix) {
      std::string v = line.substr(prefix);
      if (!v.empty() && v.front() == ' ') v.erase(0, 1);
      return v;
    };
    if (line.rfind("event:", 0) == 0) {
      current.event = value(6);
    } else if (line.rfind("data:", 0) == 0) {
      if (has_data) current.data += '\n';
      current.data += value(5);
      has_data = true;
    }
  }
  if (has_data) events.push_back(current);
  return events;
}

ChatRequest RequestFromBody(std::string body) {
  ChatRequest request;
  request.raw_body = std::move(body);
  return request;
}

boost::json::value Pruned(const boost::json::value& value,
                          std::initializer_list<std::string_view> drop) {
  return PrunedImpl(value, std::vector<std::string_view>(drop));
}

}  // namespace orchestra::wire::testing
