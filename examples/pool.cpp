// pool: a pool of worker threads, one channel each, behind a small dispatcher.
//
// A word counter sharded by key. Each shard is a handler served on its own thread by
// ump::ng::spawn_thread (ump/worker.hpp); it owns the counts of the words that hash to it,
// so it needs no lock. The dispatcher (word_counter) keeps one client per shard and routes
// every word to its shard: adding is a one-way post, reading a count is a request. Because
// all operations on one word go through one channel, and a channel is one FIFO, a read sees
// every add that happened before it, whichever thread made them.
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ump/ng.hpp"
#include "ump/worker.hpp"

// What a shard receives: posts add to a word's count; requests ask for one.
struct add {
  std::string word;
  long n;
};
enum class count_error { unknown_word };

// One shard: the handler. Every call runs on its own thread.
class shard {
 public:
  std::optional<std::size_t> post(add a) {
    counts_[std::move(a.word)] += a.n;
    return std::nullopt;  // go on
  }
  std::optional<std::size_t> req(std::string word, ump::reply_context<long, count_error> ctx) {
    auto it = counts_.find(word);
    if (it == counts_.end()) {
      ctx.fail(count_error::unknown_word);
    } else {
      ctx.reply(it->second);
    }
    return std::nullopt;
  }
  // Runs when the dispatcher has dropped its client: how many distinct words it held.
  std::size_t term(std::optional<std::size_t>) { return counts_.size(); }

 private:
  std::unordered_map<std::string, long> counts_;
};

// The dispatcher. Its methods may be called from any number of threads at once (a ump client
// may be shared between threads); close() once, after every other call.
class word_counter {
 public:
  using client = ump::ng::client<add, std::string, long, count_error>;

  explicit word_counter(std::size_t shards) {
    for (std::size_t i = 0; i < shards; ++i) {
      ump::worker_options opts;
      opts.name = "count-shard-" + std::to_string(i);  // shows in top -H, gdb
      auto [cli, worker] = ump::ng::spawn_thread<add, std::string, long, count_error>([] { return shard{}; }, opts);
      clients_.push_back(std::move(cli));
      workers_.push_back(std::move(worker));
    }
  }

  // One-way: never blocks.
  void count(std::string word, long n = 1) { (void)route(word).post(add{std::move(word), n}); }
  // The word's count; blocks until its shard answers (after every earlier add of that word).
  ump::result<long, count_error> get(const std::string& word) { return route(word).req(word); }

  // Ends the shards: drops their clients, and joins each (it ends once its queue is drained).
  // Returns how many distinct words each shard held.
  std::vector<std::size_t> close() {
    clients_.clear();
    std::vector<std::size_t> held;
    for (auto& w : workers_) held.push_back(w.join());
    workers_.clear();
    return held;
  }

 private:
  client& route(const std::string& word) { return clients_[std::hash<std::string>{}(word) % clients_.size()]; }

  std::vector<client> clients_;
  std::vector<ump::worker_thread<std::size_t>> workers_;
};

int main() {
  const std::vector<std::string> lines{
      "the quick brown fox jumps over the lazy dog",
      "the dog sleeps and the fox runs",
      "a quick brown dog and a lazy fox",
  };
  word_counter counter(4);

  // Three producers, one line each, counting at the same time.
  std::vector<std::thread> producers;
  for (const std::string& line : lines) {
    producers.emplace_back([&counter, &line] {
      std::size_t start = 0;
      while (start < line.size()) {
        std::size_t end = line.find(' ', start);
        if (end == std::string::npos) end = line.size();
        counter.count(line.substr(start, end - start));
        start = end + 1;
      }
    });
  }
  for (auto& p : producers) p.join();  // their adds happen-before the reads below

  long total = 0;
  for (const char* word : {"the", "fox", "dog", "quick", "cat"}) {
    auto n = counter.get(word);
    if (n) {
      std::printf("%-5s %ld\n", word, *n);
      total += *n;
    } else if (n.error().is_app_error()) {
      std::printf("%-5s never seen\n", word);
    }
  }

  const std::vector<std::size_t> held = counter.close();
  std::size_t words = 0;
  for (std::size_t i = 0; i < held.size(); ++i) {
    std::printf("shard %zu held %zu words\n", i, held[i]);
    words += held[i];
  }
  std::printf("%zu distinct words\n", words);
  return (total == 4 + 3 + 3 + 2 && words == 12) ? 0 : 1;
}
