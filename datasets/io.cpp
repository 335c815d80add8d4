#include "datasets/io.h"

#include <archive.h>
#include <archive_entry.h>
#include <bzlib.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "framework/error.h"
#include "framework/io/atomic_file.h"

namespace fs = std::filesystem;

namespace neurn::data {

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string path_join(const std::string& a, const std::string& b) { return (fs::path(a) / b).string(); }

std::vector<uint8_t> read_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  NEURN_CHECK(f, "cannot open ", path, " (", std::strerror(errno), ")");
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 20);
  size_t got;
  while ((got = std::fread(buf.data(), 1, buf.size(), f.get())) > 0)
    out.insert(out.end(), buf.data(), buf.data() + got);
  NEURN_CHECK(!std::ferror(f.get()), "read error in ", path);
  return out;
}

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& what) {
  z_stream zs{};
  NEURN_CHECK(inflateInit2(&zs, 15 + 32) == Z_OK, "gunzip ", what, ": zlib init failed");
  std::vector<uint8_t> out;
  out.resize(std::max<size_t>(in.size() * 4, 1 << 16));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  size_t produced = 0;
  int rc = Z_OK;
  for (;;) {
    if (produced == out.size()) out.resize(out.size() * 2);
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, 1u << 30));
    size_t before = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are one file (gzip -c a b > c).
      if (zs.avail_in > 0 && zs.next_in[0] == 0x1f) {
        inflateReset(&zs);
        continue;
      }
      break;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      NEURN_FAIL(what, ": truncated gzip stream (", in.size(), " compressed bytes end before the stream does)");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      NEURN_FAIL(what, ": corrupt gzip stream (", msg, ")");
    }
  }
  inflateEnd(&zs);
  out.resize(produced);
  return out;
}

std::vector<uint8_t> bunzip2(const std::vector<uint8_t>& in, const std::string& what) {
  std::vector<uint8_t> out(std::max<size_t>(in.size() * 5, 1 << 16));
  size_t produced = 0, consumed = 0;
  while (consumed < in.size()) {  // a .bz2 may hold several streams back to back
    bz_stream bz{};
    NEURN_CHECK(BZ2_bzDecompressInit(&bz, 0, 0) == BZ_OK, "bunzip2 ", what, ": init failed");
    bz.next_in = reinterpret_cast<char*>(const_cast<uint8_t*>(in.data() + consumed));
    bz.avail_in = static_cast<unsigned>(in.size() - consumed);
    int rc;
    for (;;) {
      if (produced == out.size()) out.resize(out.size() * 2);
      bz.next_out = reinterpret_cast<char*>(out.data() + produced);
      unsigned room = static_cast<unsigned>(std::min<size_t>(out.size() - produced, 1u << 30));
      bz.avail_out = room;
      rc = BZ2_bzDecompress(&bz);
      produced += room - bz.avail_out;
      if (rc == BZ_STREAM_END) break;
      if (rc != BZ_OK) {
        BZ2_bzDecompressEnd(&bz);
        NEURN_FAIL(what, ": corrupt bzip2 stream (error ", rc, ")");
      }
      if (bz.avail_in == 0 && bz.avail_out > 0) {
        BZ2_bzDecompressEnd(&bz);
        NEURN_FAIL(what, ": truncated bzip2 stream");
      }
    }
    consumed = in.size() - bz.avail_in;
    BZ2_bzDecompressEnd(&bz);
    if (consumed < in.size() && !(in[consumed] == 'B' && consumed + 1 < in.size() && in[consumed + 1] == 'Z')) break;
  }
  out.resize(produced);
  return out;
}

std::vector<uint8_t> read_decompressed(const std::string& path) {
  std::vector<uint8_t> bytes = read_file(path);
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return gunzip(bytes, path);
  if (bytes.size() >= 3 && bytes[0] == 'B' && bytes[1] == 'Z' && bytes[2] == 'h') return bunzip2(bytes, path);
  return bytes;
}

void write_file_atomic(const std::string& path, const void* data, size_t n) {
  io::write_file_atomic(path, data, n);  // the one durable writer (framework/io/atomic_file.h)
}

void copy_file_atomic(const std::string& from, const std::string& to) {
  std::vector<uint8_t> bytes = read_file(from);
  write_file_atomic(to, bytes.data(), bytes.size());
}

namespace {

// A member path is safe when it stays under the destination: relative, and
// no ".." component (after "./" and empty components, which are harmless).
bool unsafe_member_path(const std::string& name) {
  if (name.empty() || name[0] == '/' || name.find('\\') != std::string::npos) return true;
  for (size_t pos = 0; pos <= name.size();) {
    size_t next = name.find('/', pos);
    if (next == std::string::npos) next = name.size();
    if (name.compare(pos, next - pos, "..") == 0) return true;
    pos = next + 1;
  }
  return false;
}

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

}  // namespace

int64_t extract_archive(const std::string& archive_path, const std::string& dest,
                        const std::function<bool(const std::string&)>& want) {
  std::unique_ptr<archive, ArchiveCloser> a(archive_read_new());
  NEURN_CHECK(a, archive_path, ": cannot start libarchive");
  // The compressions and formats the official dataset files come in; the
  // format is recognised from the bytes, not the file name.
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_bzip2(a.get());
  archive_read_support_filter_xz(a.get());
  archive_read_support_format_tar(a.get());  // ustar, pax, GNU (long names)
  archive_read_support_format_zip(a.get());
  auto why = [&] {
    const char* msg = archive_error_string(a.get());
    return std::string(msg ? msg : "no message");
  };
  if (archive_read_open_filename(a.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK)
    NEURN_FAIL(archive_path, ": cannot read as a tar or zip archive (", why(), ")");
  int64_t written = 0;
  std::vector<char> body;
  std::string last = "(none yet)";
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    // A warning on a header means libarchive skipped or guessed at something
    // (a malformed pax record, an unconvertible name): refuse rather than
    // extract a member under a name it may not have.
    NEURN_CHECK(r == ARCHIVE_OK, archive_path, ": corrupt or truncated archive after member ", last, " (", why(), ")");
    const char* raw_name = archive_entry_pathname_utf8(e);
    if (!raw_name) raw_name = archive_entry_pathname(e);
    std::string name = raw_name ? raw_name : "";
    while (name.rfind("./", 0) == 0) name = name.substr(2);
    last = "'" + name + "'";
    // Regular files only: folders are made as needed; links are not followed
    // (a symlink member could point a later member outside `dest`).
    bool regular = archive_entry_filetype(e) == AE_IFREG && archive_entry_hardlink(e) == nullptr;
    if (!regular) continue;
    NEURN_CHECK(!unsafe_member_path(name), archive_path, ": refusing member with unsafe path '", name, "'");
    if (want && !want(name)) continue;
    body.clear();
    char buf[1 << 16];
    la_ssize_t got;
    while ((got = archive_read_data(a.get(), buf, sizeof(buf))) > 0) body.insert(body.end(), buf, buf + got);
    NEURN_CHECK(got == 0, archive_path, ": corrupt or truncated data in member '", name, "' (", why(), ")");
    NEURN_CHECK(!archive_entry_size_is_set(e) || static_cast<int64_t>(body.size()) == archive_entry_size(e),
                archive_path, ": member '", name, "' holds ", body.size(), " bytes, its header says ",
                archive_entry_size(e));
    write_file_atomic(path_join(dest, name), body.data(), body.size());
    ++written;
  }
  return written;
}

}  // namespace neurn::data
