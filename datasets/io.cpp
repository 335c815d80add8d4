#include "datasets/io.h"

#include <bzlib.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "framework/error.h"

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
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
    NEURN_CHECK(f, "cannot create ", tmp, " (", std::strerror(errno), ")");
    bool ok = n == 0 || std::fwrite(data, 1, n, f.get()) == n;
    ok = ok && std::fflush(f.get()) == 0;
    if (!ok) {
      f.reset();
      std::remove(tmp.c_str());
      NEURN_FAIL("write error on ", tmp, " (", std::strerror(errno), ")");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    NEURN_FAIL("cannot rename ", tmp, " to ", path, " (", ec.message(), ")");
  }
}

void copy_file_atomic(const std::string& from, const std::string& to) {
  std::vector<uint8_t> bytes = read_file(from);
  write_file_atomic(to, bytes.data(), bytes.size());
}

namespace {

// Sequential reader over a file that may be gzip-compressed.
class StreamReader {
 public:
  explicit StreamReader(const std::string& path) : path_(path) {
    gz_ = gzopen(path.c_str(), "rb");  // reads plain files transparently too
    NEURN_CHECK(gz_, "cannot open ", path);
    gzbuffer(gz_, 1 << 18);
  }
  ~StreamReader() { gzclose(gz_); }
  // Reads exactly n bytes; false at a clean end (0 bytes); throws when truncated.
  bool read(void* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      int r = gzread(gz_, static_cast<char*>(dst) + got, static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30)));
      if (r < 0) {
        int err;
        const char* msg = gzerror(gz_, &err);
        NEURN_FAIL(path_, ": corrupt archive (", msg, ")");
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    if (got == 0) return false;
    NEURN_CHECK(got == n, path_, ": truncated archive (wanted ", n, " bytes, got ", got, ")");
    return true;
  }

 private:
  std::string path_;
  gzFile gz_;
};

uint64_t parse_octal(const char* p, size_t n) {
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + static_cast<uint64_t>(p[i] - '0');
  return v;
}

std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

}  // namespace

int64_t extract_tar(const std::string& archive, const std::string& dest,
                    const std::function<bool(const std::string&)>& want) {
  StreamReader in(archive);
  char hdr[512];
  std::string long_name;  // from a GNU 'L' or pax 'x' record, for the next member
  int64_t written = 0;
  std::vector<char> body;
  for (;;) {
    if (!in.read(hdr, 512)) break;  // archives may end without the two zero blocks
    bool zero = true;
    for (char c : hdr) zero &= (c == 0);
    if (zero) break;
    uint64_t stored = parse_octal(hdr + 148, 8);
    uint64_t sum = 0;
    for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<uint8_t>(hdr[i]);
    NEURN_CHECK(sum == stored, archive, ": bad tar header checksum (not a tar archive, or corrupt)");
    uint64_t size = parse_octal(hdr + 124, 12);
    char type = hdr[156];
    std::string name = field(hdr, 100);
    if (std::memcmp(hdr + 257, "ustar", 5) == 0) {
      std::string prefix = field(hdr + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    uint64_t padded = (size + 511) / 512 * 512;
    body.resize(padded);
    if (padded > 0) NEURN_CHECK(in.read(body.data(), padded), archive, ": truncated archive in member ", name);
    if (type == 'L') {
      long_name = std::string(body.data(), strnlen(body.data(), size));
      continue;
    }
    if (type == 'x') {  // pax: "len key=value\n" records; only path matters here
      std::string recs(body.data(), size);
      size_t pos = 0;
      while (pos < recs.size()) {
        size_t sp = recs.find(' ', pos);
        if (sp == std::string::npos) break;
        size_t len = std::stoul(recs.substr(pos, sp - pos));
        std::string kv = recs.substr(sp + 1, len - (sp - pos) - 2);
        if (kv.rfind("path=", 0) == 0) long_name = kv.substr(5);
        pos += len;
      }
      continue;
    }
    if (type == 'g') continue;
    if (!long_name.empty()) {
      name = long_name;
      long_name.clear();
    }
    if (type != '0' && type != '\0') continue;  // directories, links: folders are made as needed
    bool unsafe = name.empty() || name[0] == '/';
    for (size_t pos = 0; pos <= name.size() && !unsafe;) {  // no ".." path component
      size_t next = name.find('/', pos);
      if (next == std::string::npos) next = name.size();
      unsafe = name.compare(pos, next - pos, "..") == 0;
      pos = next + 1;
    }
    NEURN_CHECK(!unsafe, archive, ": refusing member with unsafe path '", name, "'");
    if (want && !want(name)) continue;
    write_file_atomic(path_join(dest, name), body.data(), size);
    ++written;
  }
  return written;
}

}  // namespace neurn::data
