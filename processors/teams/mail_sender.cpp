#include "processors/teams/mail_sender.h"

#include <exception>

#include "topology/common/thread_name.h"

namespace cm::teams {

MailSender::MailSender(std::unique_ptr<MailTransport> transport, MailSenderOptions options)
    : transport_(std::move(transport)), options_(options) {
  if (options_.threads == 0) options_.threads = 1;
  if (options_.capacity == 0) options_.capacity = 1;
  for (size_t i = 0; i < options_.threads; ++i)
    threads_.emplace_back([this, i] {
      topology::NameCurrentThread("cm-mail-" + std::to_string(i));
      Work();
    });
}

MailSender::~MailSender() { Stop(); }

MailSender::Handover MailSender::Submit(const std::string& owner, const std::string& key,
                                        Mail mail) {
  std::lock_guard lock(mu_);
  if (stopped_) return Handover::kStopped;
  if (busy_.count(key) != 0) return Handover::kBusy;
  if (queue_.size() + sending_ >= options_.capacity) return Handover::kFull;
  busy_.insert(key);
  queue_.push_back({owner, key, std::move(mail)});
  cv_.notify_one();
  return Handover::kAccepted;
}

std::vector<MailResult> MailSender::Collect(const std::string& owner) {
  std::lock_guard lock(mu_);
  auto it = results_.find(owner);
  if (it == results_.end()) return {};
  std::vector<MailResult> out = std::move(it->second);
  results_.erase(it);
  for (const auto& r : out) busy_.erase(r.key);
  return out;
}

size_t MailSender::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size() + sending_;
}

void MailSender::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_ && threads_.empty()) return;
    stopped_ = true;
    queue_.clear();  // never handed to the server: their outbox entries stay pending
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void MailSender::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopped
      job = std::move(queue_.front());
      queue_.pop_front();
      ++sending_;
    }
    state::Status status;
    try {
      status = transport_->Send(job.mail);
    } catch (const std::exception& e) {
      status = state::Status::Aborted(std::string("mail transport threw: ") + e.what());
    }
    std::lock_guard lock(mu_);
    --sending_;
    results_[job.owner].push_back({job.key, std::move(status)});
  }
}

}  // namespace cm::teams
