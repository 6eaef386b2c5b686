#include "processors/counting/counting_topology.h"

#include <charconv>
#include <memory>

namespace cm::counting {

namespace {

class CountProcessor final : public topology::Processor {
 public:
  CountProcessor(std::string store, CountEmit emit) : store_name_(std::move(store)), emit_(emit) {}

  void Init(topology::ProcessorContext& context) override {
    context_ = &context;
    store_ = &context.GetKeyValueStore(store_name_);
  }

  void Process(const topology::Record& record) override {
    if (record.key.empty()) {
      context_->SendToDlq(record, "record has no key to count by");
      return;
    }
    uint64_t count = 0;
    if (auto v = store_->Get(record.key)) std::from_chars(v->data(), v->data() + v->size(), count);
    ++count;
    std::string value = std::to_string(count);
    store_->Put(record.key, value);
    topology::Record out;
    out.key = record.key;
    out.value = std::move(value);
    out.timestamp_ms = record.timestamp_ms;
    if (emit_ == CountEmit::kLatestPerCommit) {
      context_->ForwardAtCommit(out);
    } else {
      context_->Forward(out);
    }
  }

 private:
  std::string store_name_;
  CountEmit emit_;
  topology::ProcessorContext* context_ = nullptr;
  state::KeyValueStore* store_ = nullptr;
};

state::StoreSpec CountStoreSpec(const std::string& name) {
  state::StoreSpec spec;
  spec.name = name;
  spec.type = state::StoreType::kKeyValue;
  return spec;
}

}  // namespace

void AddCountingTopology(topology::TopologyBuilder& builder,
                         const CountingTopologyOptions& options) {
  builder.AddSource("count-source", {options.input_topic})
      .AddProcessor("count",
                    [store = options.store, emit = options.emit] {
                      return std::make_unique<CountProcessor>(store, emit);
                    },
                    {"count-source"})
      .AddSink("count-sink", options.output_topic, {"count"})
      .AddStateStore(CountStoreSpec(options.store), {"count"});
}

}  // namespace cm::counting
