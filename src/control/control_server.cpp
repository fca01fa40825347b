#include "control/control_server.hpp"
#include "util/ascii.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

namespace sg::control {
namespace {

constexpr int kBacklog = 16;
constexpr size_t kMaxEchoedCommand = 32;

bool printable(std::string_view s) {
  for (char c : s) {
    if (!is_printable(c) && c != '\r') return false;
  }
  return true;
}

StreamStep answer(Reply reply, size_t consumed, bool close) {
  return StreamStep{consumed, encode_reply(reply), close};
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Whether something accepts connections on the Unix socket at `path` (true), nothing does
// (false: ECONNREFUSED), or the question cannot be answered (error).
Expected<bool, std::string> somebody_listens(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unexpected(errno_text("socket"));
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(fd);
  if (rc == 0 || err == EAGAIN) return true;  // EAGAIN: a listener with a full backlog
  if (err == ECONNREFUSED) return false;
  return unexpected("control socket " + path +
                    ": cannot tell whether it is in use: connect: " + std::strerror(err));
}

}  // namespace

StreamProtocol control_protocol(std::vector<ControlCommand> commands, size_t max_request) {
  auto table = std::make_shared<const std::vector<ControlCommand>>(std::move(commands));
  return [table, max_request](std::string_view input, InputState state) -> StreamStep {
    size_t lf = input.find('\n');
    size_t consumed = lf + 1;
    if (lf == std::string_view::npos) {
      if (state == InputState::kMore && input.size() < max_request) return {};
      if (state != InputState::kEnd || input.size() >= max_request) {
        return answer(Reply::error("request longer than " + std::to_string(max_request) + " bytes"),
                      input.size(), true);
      }
      lf = input.size();  // the client's last line, sent without its LF
      consumed = input.size();
    } else if (lf + 1 > max_request) {
      return answer(Reply::error("request longer than " + std::to_string(max_request) + " bytes"),
                    input.size(), true);
    }
    const std::string_view line = input.substr(0, lf);
    if (!printable(line))
      return answer(Reply::error("malformed request: not printable ASCII"), input.size(), true);
    auto request = parse_request(line);
    if (!request) return answer(Reply::error(request.error()), consumed, false);

    if (request->command == kHelp) {
      std::string body;
      for (const ControlCommand& c : *table) body += c.usage + "\n";
      body += std::string(kHelp) + "\n";
      return answer(Reply::success(std::move(body)), consumed, false);
    }
    for (const ControlCommand& c : *table) {
      if (c.name != request->command) continue;
      Reply reply;
      SocketTaker take;
      try {
        if (c.streaming) {
          StreamingReply r = c.streaming(request->argument);
          reply = std::move(r.reply);
          if (reply.ok) take = std::move(r.take);
        } else {
          reply = c.handler(request->argument);
        }
      } catch (const std::exception& e) {
        reply = Reply::error(std::string(c.name) + " failed: " + e.what());
        take = nullptr;
      }
      if (reply.body.size() > kMaxReply)
        reply = Reply::error("reply too large (" + std::to_string(reply.body.size()) + " bytes)");
      if (!reply.ok) take = nullptr;
      StreamStep step = answer(std::move(reply), consumed, false);
      step.take = std::move(take);
      return step;
    }
    std::string_view name = request->command.substr(0, kMaxEchoedCommand);
    return answer(Reply::error("unknown command \"" + std::string(name) + "\" (try: help)"),
                  consumed, false);
  };
}

Expected<std::unique_ptr<ControlServer>, std::string> ControlServer::start(
    ControlServerOptions options, std::vector<ControlCommand> commands) {
  const std::string& path = options.path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return unexpected(std::string("control socket: empty path"));
  if (path.size() >= sizeof(addr.sun_path)) {
    return unexpected("control socket " + path + ": path longer than " +
                      std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  if ((options.mode & ~static_cast<mode_t>(0770)) != 0 || (options.mode & 0600) != 0600) {
    return unexpected("control socket " + path +
                      ": mode must give the owner read and write and nobody else any "
                      "access beyond the group (0600 or 0660)");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());

  // The socket's own directory (e.g. /run/smtpguard) is created when missing; its parents must
  // exist.
  if (const size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return unexpected(errno_text("control socket " + path + ": creating " + dir));
  }

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return unexpected("control socket " + path + ": exists and is not a socket (not replaced)");
    auto listens = somebody_listens(path);
    if (!listens) return unexpected(listens.error());
    if (*listens) {
      return unexpected("control socket " + path +
                        ": another process answers on it (is smtpguardd already running?)");
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return unexpected(errno_text("control socket " + path + ": removing the stale socket"));
  } else if (errno != ENOENT) {
    return unexpected(errno_text("control socket " + path + ": lstat"));
  }

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unexpected(errno_text("control socket: socket"));
  // bind() creates the file with the socket inode's mode less the umask: set both, so the file
  // never exists with more access than asked for. The umask is process-wide; nothing else
  // creates files while the daemon starts.
  (void)::fchmod(fd, options.mode);
  const mode_t old_umask = ::umask(~options.mode & 0777);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) {
    ::close(fd);
    errno = bind_errno;
    return unexpected(errno_text("control socket " + path + ": bind"));
  }
  struct stat created {};
  if (::chmod(path.c_str(), options.mode) != 0 || ::stat(path.c_str(), &created) != 0 ||
      ::listen(fd, kBacklog) != 0) {
    std::string error = errno_text("control socket " + path);
    ::close(fd);
    ::unlink(path.c_str());
    return unexpected(error);
  }

  StreamServerOptions so;
  so.max_clients = options.max_clients;
  so.max_input = options.max_request;
  so.timeout = options.timeout;
  so.busy_reply = encode_reply(Reply::error("busy: too many control clients"));
  auto server = StreamServer::start(fd, std::move(so),
                                    control_protocol(std::move(commands), options.max_request));
  if (!server) {
    ::unlink(path.c_str());
    return unexpected("control socket " + path + ": " + server.error());
  }
  return std::unique_ptr<ControlServer>(
      new ControlServer(path, created.st_dev, created.st_ino, std::move(*server)));
}

ControlServer::ControlServer(std::string path, dev_t dev, ino_t ino,
                             std::unique_ptr<StreamServer> server)
    : path_(std::move(path)), dev_(dev), ino_(ino), server_(std::move(server)) {}

ControlServer::~ControlServer() {
  stop();
}

void ControlServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  server_->stop();
  // Only the file this server created: a newer daemon may have replaced it meanwhile.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    ::unlink(path_.c_str());
}

}  // namespace sg::control
