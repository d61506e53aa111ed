#!/usr/bin/env bash
# Regenerates the traceback fixtures from the real runtimes: each program below crashes, and its
# stderr becomes NAME.txt. Run by hand (not by CI): bash tests/data/tracebacks/generate.sh
# Python 3, Node.js, Java and rustc are on every machine of this project; Ruby and Go are
# installed from Debian's packages when missing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need ruby ruby
need go golang-go

# capture NAME CMD...: runs CMD in $work, keeps its stderr as NAME.txt (paths made stable).
capture() {
  local name=$1; shift
  local status=0
  (cd "$work" && "$@" 2> "$here/$name.txt" >/dev/null) || status=$?
  sed -i "s#$work#/app#g" "$here/$name.txt"
  echo "$name: exit $status"
}

# ---- Python
cat > "$work/zero.py" <<'EOF'
def ratio(a, b):
    return a / b
print("computing", flush=True)
ratio(1, 0)
EOF
capture py_zero python3 zero.py
cat > "$work/chain_from.py" <<'EOF'
config = {}
try:
    port = config["port"]
except KeyError as e:
    raise ValueError("bad config: no port") from e
EOF
capture py_chain_from python3 chain_from.py
cat > "$work/chain_during.py" <<'EOF'
try:
    open("/nonexistent/file")
except OSError:
    raise RuntimeError("cleanup failed")
EOF
capture py_chain_during python3 chain_during.py
mkdir -p "$work/pkg"
cat > "$work/pkg/errors.py" <<'EOF'
class DiskFull(Exception):
    pass
EOF
cat > "$work/module_error.py" <<'EOF'
from pkg.errors import DiskFull
raise DiskFull("no space left on /var")
EOF
capture py_module_error python3 module_error.py
cat > "$work/multiline.py" <<'EOF'
raise ValueError("first line\nsecond line")
EOF
capture py_multiline python3 multiline.py
cat > "$work/no_message.py" <<'EOF'
raise RuntimeError
EOF
capture py_no_message python3 no_message.py
cat > "$work/carets.py" <<'EOF'
settings = {"a": {"b": 1}}
print(settings["a"]["c"] + 1)
EOF
capture py_carets python3 carets.py
cat > "$work/group.py" <<'EOF'
raise ExceptionGroup("startup failed", [ValueError("bad port"), TypeError("bad host")])
EOF
capture py_exception_group python3 group.py
cat > "$work/syntax.py" <<'EOF'
def broken(:
    pass
EOF
capture py_syntax_error python3 syntax.py
cat > "$work/logged_then_crash.py" <<'EOF'
import logging, sys
try:
    int("x")
except ValueError:
    logging.exception("handled, going on")
print("a few more lines", file=sys.stderr)
raise KeyError("missing")
EOF
capture py_two_tracebacks python3 logged_then_crash.py
cat > "$work/trailing_noise.py" <<'EOF'
import logging, sys
logging.basicConfig(format="%(levelname)s %(message)s")
try:
    {}["db_url"]
except KeyError:
    logging.exception("config incomplete, using defaults")
logging.warning("shutting down")
print("bye", file=sys.stderr)
sys.exit(3)
EOF
capture py_trailing_noise python3 trailing_noise.py
cat > "$work/deep.py" <<'EOF'
def ping(n):
    return pong(n - 1) if n else fail()
def pong(n):
    return ping(n - 1)
def fail():
    raise LookupError("depth reached")
ping(40)
EOF
capture py_deep python3 deep.py

# ---- Node.js
cat > "$work/type_error.js" <<'EOF'
function parse(input) {
  if (typeof input !== "string") throw new TypeError("input must be a string");
}
parse(42);
EOF
capture node_type_error node type_error.js
cat > "$work/rejection.js" <<'EOF'
async function connect() { throw new Error("connection refused"); }
connect();
EOF
capture node_unhandled_rejection node rejection.js
cat > "$work/cause.js" <<'EOF'
try { JSON.parse("{"); } catch (e) { throw new Error("config unreadable", { cause: e }); }
EOF
capture node_cause node cause.js
cat > "$work/throw_string.js" <<'EOF'
throw "boom";
EOF
capture node_throw_string node throw_string.js
cat > "$work/reject_string.js" <<'EOF'
Promise.reject("boom");
EOF
capture node_reject_string node reject_string.js
cat > "$work/exit.js" <<'EOF'
console.error("fatal: database unreachable");
process.exit(1);
EOF
capture node_exit node exit.js
cat > "$work/custom.js" <<'EOF'
class ValidationError extends Error { constructor(m) { super(m); this.name = "ValidationError"; } }
throw new ValidationError("email is required");
EOF
capture node_custom_error node custom.js
cat > "$work/multiline.js" <<'EOF'
throw new Error("cannot start\nport 8080 is in use");
EOF
capture node_multiline node multiline.js
cat > "$work/a.js" <<'EOF'
require("./b");
EOF
cat > "$work/b.js" <<'EOF'
require("./missing");
EOF
capture node_require_stack node a.js
cat > "$work/throw_object.js" <<'EOF'
throw { code: "E_CONFIG", retry: false };
EOF
capture node_throw_object node throw_object.js
cat > "$work/exec_sync.js" <<'EOF'
require("child_process").execSync("sh -c 'echo fatal: not a git repository >&2; exit 128'");
EOF
capture node_exec_sync node exec_sync.js

# ---- Rust
rust_fixture() {
  local name=$1 src=$2; shift 2
  printf '%s\n' "$src" > "$work/$name.rs"
  rustc --edition 2021 -o "$work/$name" "$work/$name.rs" 2>/dev/null
  (cd "$work" && mkdir -p src && cp "$name.rs" src/main.rs)
  capture "$name" env "$@" "./$name"
}
rust_fixture rust_panic 'fn main() { let v: Vec<u8> = Vec::new(); if v.is_empty() { panic!("no workers configured"); } }' RUST_BACKTRACE=0
rust_fixture rust_unwrap 'fn main() { let n: u32 = "12a".parse().unwrap(); println!("{n}"); }' RUST_BACKTRACE=0
rust_fixture rust_index 'fn main() { let v = vec![1, 2, 3]; let i = v.len() + 2; println!("{}", v[i]); }' RUST_BACKTRACE=0
rust_fixture rust_backtrace 'fn main() { let o: Option<u8> = None; o.expect("token missing"); }' RUST_BACKTRACE=1
rust_fixture rust_main_err 'fn main() -> Result<(), std::num::ParseIntError> { let n: i32 = "x".parse()?; println!("{n}"); Ok(()) }' RUST_BACKTRACE=0
rust_fixture rust_unwrap_none 'fn main() { let port: Option<u16> = std::env::args().nth(5).map(|_| 1); port.unwrap(); }' RUST_BACKTRACE=0
rust_fixture rust_multiline 'fn main() { panic!("config invalid:\n  port: not a number"); }' RUST_BACKTRACE=1
rust_fixture rust_thread 'fn main() { let h = std::thread::Builder::new().name("worker".into()).spawn(|| panic!("queue closed")).unwrap(); h.join().unwrap(); }' RUST_BACKTRACE=0
rust_fixture rust_main_err_box 'fn main() -> Result<(), Box<dyn std::error::Error>> { Err("config file missing".into()) }' RUST_BACKTRACE=0

# ---- Go
go_fixture() {
  local name=$1 src=$2
  mkdir -p "$work/$name" && printf '%s\n' "$src" > "$work/$name/main.go"
  (cd "$work/$name" && GOCACHE="$work/.gocache" GO111MODULE=off go build -o "../$name.bin" main.go)
  capture "$name" "./$name.bin"
}
go_fixture go_panic 'package main
func main() { panic("boom") }'
go_fixture go_index 'package main
import "fmt"
func main() { s := []int{1, 2, 3}; i := 5; fmt.Println(s[i]) }'
go_fixture go_nil_map 'package main
func main() { var m map[string]int; m["a"] = 1 }'
go_fixture go_error_value 'package main
import "fmt"
func main() { panic(fmt.Errorf("open %s: permission denied", "/etc/app.conf")) }'
go_fixture go_log_fatal 'package main
import "log"
func main() { log.Fatal("listen tcp :8080: bind: address already in use") }'
go_fixture go_repanic 'package main
func main() {
	defer func() { r := recover(); panic("cleanup failed") ; _ = r }()
	panic("first failure")
}'
go_fixture go_nil_pointer 'package main
type T struct{ n int }
func main() { var t *T; println(t.n) }'
go_fixture go_goroutine 'package main
import ("fmt"; "time")
func worker(id int) { time.Sleep(10 * time.Millisecond); panic(fmt.Sprintf("worker %d: queue closed", id)) }
func main() { go worker(7); time.Sleep(5 * time.Second) }'
go_fixture go_deadlock 'package main
func main() { ch := make(chan int); <-ch }'

# ---- Java
java_fixture() {
  local name=$1 src=$2
  mkdir -p "$work/$name" && printf '%s\n' "$src" > "$work/$name/Main.java"
  capture "$name" java "$name/Main.java"
}
java_fixture java_caused_by 'public class Main {
  static void load() { throw new IllegalArgumentException("port must be a number"); }
  public static void main(String[] a) {
    try { load(); } catch (RuntimeException e) { throw new IllegalStateException("config failed", e); }
  }
}'
java_fixture java_npe 'public class Main {
  public static void main(String[] a) { String s = a.length > 5 ? "x" : null; System.out.println(s.length()); }
}'
java_fixture java_no_message 'public class Main {
  public static void main(String[] a) { throw new RuntimeException(); }
}'
java_fixture java_thread 'public class Main {
  public static void main(String[] a) throws Exception {
    Thread t = new Thread(() -> { throw new UnsupportedOperationException("worker died"); }, "worker-1");
    t.start(); t.join(); System.exit(1);
  }
}'
# Compiled, then run from the class path: no launcher frames are trimmed, so `... N more` appears.
java_compiled_fixture() {
  local name=$1 src=$2
  mkdir -p "$work/$name" && printf '%s\n' "$src" > "$work/$name/Main.java"
  (cd "$work/$name" && javac Main.java)
  capture "$name" java -cp "$name" Main
}
java_compiled_fixture java_more 'import java.io.FileNotFoundException;
public class Main {
  static class StartupException extends RuntimeException {
    StartupException(String m, Throwable c) { super(m, c); }
  }
  static void open(String p) throws FileNotFoundException { throw new FileNotFoundException(p + " (No such file or directory)"); }
  static void load() { try { open("/etc/app.conf"); } catch (FileNotFoundException e) { throw new IllegalStateException("config unreadable", e); } }
  static void start() { try { load(); } catch (IllegalStateException e) { throw new StartupException("startup failed", e); } }
  public static void main(String[] a) { start(); }
}'
java_compiled_fixture java_print_stack_trace 'public class Main {
  public static void main(String[] a) {
    try { Integer.parseInt("x"); } catch (NumberFormatException e) { e.printStackTrace(); System.exit(1); }
  }
}'
java_compiled_fixture java_deep 'public class Main {
  static void descend(int n) { if (n == 0) throw new IllegalStateException("depth reached"); descend(n - 1); }
  public static void main(String[] a) { descend(120); }
}'

# ---- Ruby
cat > "$work/argument.rb" <<'EOF'
def connect(port)
  raise ArgumentError, "port out of range" if port > 65535
end
connect(70000)
EOF
capture ruby_argument ruby argument.rb
cat > "$work/cause.rb" <<'EOF'
begin
  Integer("abc")
rescue ArgumentError
  raise IOError, "could not read settings"
end
EOF
capture ruby_cause ruby cause.rb
cat > "$work/plain.rb" <<'EOF'
raise "plain failure"
EOF
capture ruby_plain ruby plain.rb
cat > "$work/zero.rb" <<'EOF'
def rate(a, b) = a / b
rate(1, 0)
EOF
capture ruby_zero ruby zero.rb
cat > "$work/custom_class.rb" <<'EOF'
module Billing
  class PaymentError < StandardError; end
end
def charge = raise(Billing::PaymentError, "card declined")
charge
EOF
capture ruby_custom_class ruby custom_class.rb
cat > "$work/cause_chain.rb" <<'EOF'
def load_config
  File.read("/nonexistent/app.yml")
rescue SystemCallError
  raise "config unreadable"
end
def start
  load_config
rescue RuntimeError
  raise ArgumentError, "startup failed"
end
start
EOF
capture ruby_cause_chain ruby cause_chain.rb
cat > "$work/stack_overflow.rb" <<'EOF'
def walk(n) = walk(n + 1)
walk(0)
EOF
capture ruby_stack_overflow ruby stack_overflow.rb
cat > "$work/multiline.rb" <<'EOF'
def check = raise(ArgumentError, "invalid config\nport: not a number")
check
EOF
capture ruby_multiline ruby multiline.rb
cat > "$work/deep.rb" <<'EOF'
def descend(n) = n.zero? ? raise(IndexError, "depth reached") : descend(n - 1)
descend(120)
EOF
capture ruby_deep ruby deep.rb

# ---- other
capture plain_last_line sh -c 'echo "starting" >&2; echo "" >&2; echo "fatal: cannot open /etc/app.conf" >&2; echo "   " >&2; exit 1'
printf '\033[31mTraceback (most recent call last):\033[0m\n  File "/app/x.py", line 1, in <module>\n\033[1;31mValueError\033[0m: \033[35mcoloured\033[0m\n' > "$here/ansi_python.txt"
echo "ansi_python: written"
