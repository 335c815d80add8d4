#pragma once
// Where each domain's files live under the data root (docs/data.md has the
// same table for users), and the official places to get them.
#include <string>
#include <vector>

namespace neurn::data::layout {

// MNIST: <root>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. Returns
// the existing variant (gzip preferred), else the .gz name.
std::string mnist_file(const std::string& root, const std::string& split, bool images);
// USPS: <root>/usps/zip.{train,test}[.gz], else libsvm usps[.bz2] / usps.t[.bz2].
// Empty when neither form is present.
std::string usps_file(const std::string& root, const std::string& split, bool* libsvm);
// SVHN: <root>/svhn/{train,test,extra}_32x32.mat; the sample <root>/svhn/svhn_sample50_32x32.mat.
std::string svhn_file(const std::string& root, const std::string& split);
std::string svhn_sample_file(const std::string& root);
// MNIST-M: <root>/mnist_m/mnist_m_{train,test}/ and mnist_m_{train,test}_labels.txt;
// the decoded cache <root>/mnist_m/mnistm_{train,test}.u8.
std::string mnistm_dir(const std::string& root, const std::string& split);
std::string mnistm_labels(const std::string& root, const std::string& split);
std::string mnistm_cache(const std::string& root, const std::string& split);
// BSDS500 training photos: <root>/bsds500/BSR/BSDS500/data/images/train/*.jpg.
std::string bsds_train_dir(const std::string& root);
// The BSDS500 training photos under `root` checked against their SHA-256s
// (datasets/checksums.inc; the official archive has no published checksum,
// so its contents are checked instead): "" when all 200 are there and match,
// else what is wrong (the first photo that is missing, unknown or different).
std::string check_bsds_photos(const std::string& root);
// syn's on-disk cache: <root>/syn/syn_<split>_<count>_seed<seed>_<key>.u8, where
// <key> is 12 hex digits of the SHA-256 of syn_key(root): a cache made from
// other fonts or without the photos is never read in place of this machine's.
std::string syn_cache(const std::string& root, const std::string& split, int64_t count, uint64_t seed);
// What syn under `root` is made from (datasets/generators.h syn_source_key):
// the installed fonts and the BSDS500 training photos when they are there.
std::string syn_key(const std::string& root);

// syn's default splits (SynDigits-like sizes, kept small enough to generate in seconds).
constexpr int64_t kSynTrainCount = 25000, kSynTestCount = 9000;
constexpr uint64_t kSynTrainSeed = 1001, kSynTestSeed = 2002;
// The expected record counts of the official splits (0: unknown).
int64_t official_count(const std::string& domain, const std::string& split);

}  // namespace neurn::data::layout
