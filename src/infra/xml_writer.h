#pragma once
// A minimal XML writer for libvirt domain and network documents. Hand-written because all we need
// is "open, attribute, text, close" with correct escaping, and libxml2's C tree API would be
// three times the code for the same output. Every attribute value and every text node goes
// through escape(), so a config value can never change the document's structure.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace continuum::infra::detail {

/// Escapes the five XML special characters (valid in text and in single/double-quoted attributes).
inline std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

class XmlWriter {
 public:
  using Attrs = std::vector<std::pair<std::string, std::string>>;

  /// <name a='v'...> and indent what follows.
  XmlWriter& open(std::string_view name, const Attrs& attrs = {}) {
    start_tag(name, attrs);
    out_ += ">\n";
    stack_.emplace_back(name);
    return *this;
  }
  /// <name a='v'.../>
  XmlWriter& empty(std::string_view name, const Attrs& attrs = {}) {
    start_tag(name, attrs);
    out_ += "/>\n";
    return *this;
  }
  /// <name a='v'...>text</name>
  XmlWriter& leaf(std::string_view name, std::string_view text, const Attrs& attrs = {}) {
    start_tag(name, attrs);
    out_ += '>';
    out_ += xml_escape(text);
    out_ += "</";
    out_ += name;
    out_ += ">\n";
    return *this;
  }
  XmlWriter& close() {
    std::string name = std::move(stack_.back());
    stack_.pop_back();
    indent();
    out_ += "</" + name + ">\n";
    return *this;
  }
  std::string str() const { return out_; }

 private:
  void indent() { out_.append(stack_.size() * 2, ' '); }
  void start_tag(std::string_view name, const Attrs& attrs) {
    indent();
    out_ += '<';
    out_ += name;
    for (const auto& [k, v] : attrs) {
      out_ += ' ';
      out_ += k;
      out_ += "='";
      out_ += xml_escape(v);
      out_ += '\'';
    }
  }
  std::string out_;
  std::vector<std::string> stack_;
};

}  // namespace continuum::infra::detail
