#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "processors/teams/mail_transport.h"
#include "state/status.h"

namespace cm::teams {

struct MailSenderOptions {
  size_t threads = 2;     // concurrent deliveries
  size_t capacity = 256;  // mails queued or in flight at once; Submit refuses more
};

// What became of one handed-over mail.
struct MailResult {
  std::string key;
  state::Status status;
};

// Hands mails to a MailTransport on threads of its own, so that a slow or unreachable mail
// server never stalls a stream thread. Owned by the application (`cmstream run`), shared by
// every task's InvitationMailer; it outlives the streams and is stopped after them.
//
// A mail is handed over with an owner (the task) and a key (the invitation). A key stays busy
// from Submit until its result has been collected by its owner, so a task never hands over the
// same mail twice at once, even when it is closed and reopened meanwhile. Thread-safe.
class MailSender {
 public:
  enum class Handover { kAccepted, kBusy, kFull, kStopped };

  MailSender(std::unique_ptr<MailTransport> transport, MailSenderOptions options = {});
  ~MailSender();
  MailSender(const MailSender&) = delete;
  MailSender& operator=(const MailSender&) = delete;

  Handover Submit(const std::string& owner, const std::string& key, Mail mail);
  // The results of `owner`'s mails that finished since the last call.
  std::vector<MailResult> Collect(const std::string& owner);
  // Mails queued or being sent (not those whose results wait for collection).
  size_t pending() const;
  // Lets the mails being sent finish, drops the queued ones and joins the threads. Idempotent.
  void Stop();

 private:
  struct Job {
    std::string owner;
    std::string key;
    Mail mail;
  };
  void Work();

  std::unique_ptr<MailTransport> transport_;
  MailSenderOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  size_t sending_ = 0;
  std::set<std::string> busy_;  // keys handed over and not yet collected
  std::map<std::string, std::vector<MailResult>> results_;  // by owner
  bool stopped_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cm::teams
