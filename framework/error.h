#pragma once
// Errors a user can act on: every failure names the op, what it got and what
// it expected. NEURN_CHECK builds the message only when the check fails.
#include <sstream>
#include <stdexcept>
#include <string>

namespace neurn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace neurn

#define NEURN_CHECK(cond, ...)                                        \
  do {                                                                \
    if (!(cond)) throw ::neurn::Error(::neurn::detail::concat(__VA_ARGS__)); \
  } while (0)

#define NEURN_FAIL(...) throw ::neurn::Error(::neurn::detail::concat(__VA_ARGS__))
