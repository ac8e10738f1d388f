#pragma once

#include <memory>
#include <string>

#include "services/child.hpp"

// The Cloud Firestore emulator for tests: `gcloud emulators firestore start` on a free loopback
// port, in a session of its own (gcloud starts a shell that starts Java: Stop() kills every
// process of the session and reaps them all, and a test process that dies takes the session
// with it). Its data lives in memory and goes with it.
//
// The emulator ships with the Google Cloud CLI (component cloud-firestore-emulator, Debian
// package google-cloud-cli-firestore-emulator from Google's apt repository) and needs Java.
// Tests call Available() first and skip, loudly, when it is missing; gcloud runs with a
// private configuration directory and without network checks (no metadata probe, no update
// check, no usage reporting).
namespace orchestra::testing::services {

class FirestoreEmulator {
 public:
  // For a test about to use the emulator: whether it can run here; when not, `why` is the
  // reason to skip with, and the process says so loudly on stderr (once), with the words
  // "FIRESTORE EMULATOR MISSING" that CTest's ONE_PROCESS groups report as skipped.
  static bool AvailableForTests(std::string& why);

  // Whether the emulator can run on this machine; when not, `why` says what is missing.
  // $ORCHESTRA_GCLOUD names the gcloud binary (default: found in /usr/bin, /usr/lib/google-
  // cloud-sdk/bin, /usr/local/bin).
  static bool Available(std::string* why = nullptr);

  // Starts it and waits until it answers, and has answered a few real requests (Java is slow
  // to start and then slow on its first requests); throws std::runtime_error with its log when
  // it cannot.
  FirestoreEmulator();
  FirestoreEmulator(const FirestoreEmulator&) = delete;
  FirestoreEmulator& operator=(const FirestoreEmulator&) = delete;
  ~FirestoreEmulator();

  // One emulator for the whole test process, started on first use (its start-up is the
  // expensive part). Tests keep apart by using their own tenants or root collections.
  static FirestoreEmulator& Shared();

  void Stop();   // SIGKILL to the whole session, and reap: an abrupt outage
  void Start();  // again, on the same port (empty: the emulator keeps nothing)
  // SIGSTOP / SIGCONT to the whole session: it accepts connections but answers nothing.
  void Pause();
  void Resume();
  bool running() const { return child_ != nullptr; }

  int port() const { return port_; }
  // host:port, as $FIRESTORE_EMULATOR_HOST takes it.
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  bool TryStart();
  void SignalSession(int sig);

  ScratchDir dir_;
  int port_ = 0;
  std::unique_ptr<Child> child_;  // the session leader (a shell that waits for gcloud)
};

}  // namespace orchestra::testing::services
