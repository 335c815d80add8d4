#pragma once
// File helpers of the data layer: whole-file reads that undo gzip/bzip2 by
// their magic bytes, atomic writes (temporary name, then rename, so a crash
// never leaves a half-written file under the real name), and the extraction
// of archives (libarchive) for the MNIST-M and BSDS500 tarballs.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace neurn::data {

bool file_exists(const std::string& path);
std::string path_join(const std::string& a, const std::string& b);

// The bytes as stored. Throws naming the file.
std::vector<uint8_t> read_file(const std::string& path);
// The bytes, decompressed when the file starts with the gzip (1f 8b) or bzip2
// ("BZh") magic; as stored otherwise. A truncated or corrupt stream throws
// naming the file.
std::vector<uint8_t> read_decompressed(const std::string& path);
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& bytes, const std::string& what);
std::vector<uint8_t> bunzip2(const std::vector<uint8_t>& bytes, const std::string& what);

// Writes `n` bytes to `path` atomically and durably (framework/io/atomic_file.h:
// a temporary, fsync, rename, fsync of the folder); creates the parent folders.
void write_file_atomic(const std::string& path, const void* data, size_t n);
void copy_file_atomic(const std::string& from, const std::string& to);

// Extracts the regular files of an archive under `dest`, through libarchive:
// tar (ustar, pax, GNU long names) plain or compressed with gzip, bzip2 or xz
// (.tar, .tar.gz, .tgz, .tar.bz2), and zip; the format is read from the bytes.
// `want(path)` filters members (null: all). Each file is written atomically;
// paths that are absolute or contain ".." are refused, links and folders are
// not extracted (folders are made as needed). A corrupt or truncated archive,
// or a header libarchive had to guess at, is an error naming the archive and
// the last member read. Returns the number of files written.
int64_t extract_archive(const std::string& archive, const std::string& dest,
                        const std::function<bool(const std::string&)>& want = nullptr);
inline int64_t extract_tar(const std::string& archive, const std::string& dest,
                           const std::function<bool(const std::string&)>& want = nullptr) {
  return extract_archive(archive, dest, want);
}

}  // namespace neurn::data
