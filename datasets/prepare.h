#pragma once
// `neurn data prepare` and `neurn data verify`: fill the data root from
// ../shared/data when it exists (else from the official sources: datasets/download.h),
// check the checksums in datasets/checksums.inc, extract archives, build the
// decoded caches. Every file lands under its real name only after it was
// verified (temporary name, then rename).
#include <functional>
#include <string>
#include <vector>

namespace neurn::data {

using Log = std::function<void(const std::string&)>;

// What prepare/verify know, in dependency order: mnist usps svhn svhn_sample50
// mnistm bsds500 syn (syn uses the BSDS500 photos when they are there).
const std::vector<std::string>& preparable();

// The folder with the shared copies: $NEURN_SHARED_DATA, else ../shared/data
// beside the working directory or beside the project holding the executable.
// Empty when none exists.
std::string find_shared_data();

// Prepares one item; throws neurn::Error (saying what to download and where to
// put it) when its files cannot be found or fail their checksums.
void prepare(const std::string& item, const std::string& root, const std::string& shared, const Log& log);

// Checks one item under `root`; returns the problems found (empty: all good,
// or absent: then `absent` is set).
std::vector<std::string> verify(const std::string& item, const std::string& root, const Log& log, bool* absent);

// The checksum entry for a path under the root (empty kind when none).
struct ChecksumEntry {
  std::string kind, digest, path;
};
ChecksumEntry checksum_for(const std::string& rel_path);
// Checks bytes against the entry for `rel_path`; returns "" or what is wrong.
std::string check_bytes(const std::string& rel_path, const std::vector<uint8_t>& bytes, const std::string& where);

}  // namespace neurn::data
