#pragma once
// The one vocabulary of layer tokens that every trace is written in, for the
// Needleman-Wunsch aligner and the pattern similarity: each token has a
// short name, a one-character code and the layer types (Module::type(), what
// LayerTrace records) that count as it. The table is in vocabulary.cpp and,
// for readers, in docs/similarity.md.
#include <string>
#include <vector>

namespace neurn::similarity {

struct TokenInfo {
  std::string name;                      // "Conv"
  char code;                             // 'C'
  std::vector<std::string> layer_types;  // recorded types that map to it: {"Conv"}
  std::string meaning;                   // what counts as it, one line
};

// The whole table, in a fixed order (the order of docs/similarity.md).
const std::vector<TokenInfo>& vocabulary();

// A layer's recorded type, or a token name, or a one-character code, to its
// vocabulary entry; nullptr when it is none of them.
const TokenInfo* find_token(const std::string& name_or_type);

// A model's recorded layer types in vocabulary tokens. A type the table does
// not know is kept under its own name with code '?' (so an analysis never
// fails on a new layer); tests/models/test_similarity_trace.cpp checks that
// no registered model has one.
std::vector<std::string> to_vocabulary(const std::vector<std::string>& layer_types);
// The one-character codes of vocabulary tokens ('?' for unknown ones).
std::string to_codes(const std::vector<std::string>& tokens);

// "seq:Conv,ReLU,MaxPool" (or without "seq:"): comma-separated token names,
// layer types or codes; throws naming the unknown token. "seq:" alone is the
// empty sequence.
std::vector<std::string> parse_sequence(const std::string& spec);

}  // namespace neurn::similarity
