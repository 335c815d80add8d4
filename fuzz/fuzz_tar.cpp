// Tar extraction (plain or gzip; ustar, GNU long names, pax records) into a
// scratch folder: every member must land inside it.
#include <filesystem>

#include "datasets/io.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  std::string archive = fuzz::put("in.tar", data, size);
  std::string dest = fuzz::scratch() + "/out";
  std::error_code ec;
  std::filesystem::remove_all(dest, ec);
  std::filesystem::create_directories(dest);
  fuzz::expect_clear_errors([&] { data::extract_tar(archive, dest); });
  // Nothing may have been written outside dest (a "../" or absolute member).
  for (auto& e : std::filesystem::directory_iterator(fuzz::scratch()))
    if (e.path().filename() != "out" && e.path().filename() != "in.tar") {
      std::fprintf(stderr, "tar extraction wrote outside its folder: %s\n", e.path().c_str());
      std::abort();
    }
  std::filesystem::remove_all(dest, ec);
  return 0;
}
