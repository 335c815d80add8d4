// results.jsonl: one record per line; load_results must report and skip
// every bad line, and what it keeps must survive a round trip.
#include "experiments/results.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace neurn;
  std::string path = fuzz::put("results.jsonl", data, size);
  experiments::LoadedResults res = experiments::load_results(path);  // never throws for bad lines
  for (auto& r : res.records) {
    experiments::RunRecord back = experiments::record_from_json(experiments::record_to_json(r));
    if (back.run_id != r.run_id || back.fingerprint != r.fingerprint) std::abort();
  }
  return 0;
}
