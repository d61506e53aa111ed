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
need php php-cli
need elixir elixir
need g++ g++

# capture NAME CMD...: runs CMD in $work, keeps its stderr as NAME.txt (paths made stable).
# With ONLY=REGEX in the environment, only fixtures whose name matches are written (the others
# hold run-dependent ids and addresses, so regenerating them all makes noisy diffs).
capture() {
  local name=$1; shift
  if [[ -n "${ONLY:-}" && ! "$name" =~ $ONLY ]]; then return; fi
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

# ---- native (g++/gcc 12; sanitizers from the same compiler)
cat > "$work/terminate.cpp" <<'EOF'
#include <stdexcept>
#include <cstdio>
static void load() { throw std::runtime_error("config file /etc/app.conf not found"); }
int main() { std::fputs("starting\n", stderr); load(); }
EOF
cat > "$work/terminate_custom.cpp" <<'EOF'
#include <exception>
namespace app { struct ConfigError : std::exception { const char* what() const noexcept override { return "port must be set"; } }; }
int main() { throw app::ConfigError(); }
EOF
cat > "$work/assert.c" <<'EOF'
#include <assert.h>
#include <stdio.h>
static int workers(void) { return 0; }
int main(void) { int n = workers(); fprintf(stderr, "workers: %d\n", n); assert(n > 0); return 0; }
EOF
cat > "$work/double_free.c" <<'EOF'
#include <stdlib.h>
#include <stdio.h>
int main(void) { char *volatile p = malloc(32); fprintf(stderr, "freeing\n"); free(p); free(p); return 0; }
EOF
cat > "$work/stack_smash.c" <<'EOF'
#include <string.h>
static void copy(const char *s) { char buf[8]; strcpy(buf, s); }
int main(void) { copy("this string is far longer than eight bytes"); return 0; }
EOF
cat > "$work/asan_uaf.c" <<'EOF'
#include <stdlib.h>
static int *make(void) { int *p = malloc(4 * sizeof(int)); p[0] = 1; return p; }
int main(void) { int *p = make(); free(p); return p[0]; }
EOF
cat > "$work/ubsan_overflow.c" <<'EOF'
#include <limits.h>
#include <stdio.h>
static int next(int x) { return x + 1; }
int main(void) { volatile int big = INT_MAX; printf("%d\n", next(big)); return 0; }
EOF
cat > "$work/lsan_leak.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
static char *keep(void) { char *p = malloc(64); memset(p, 1, 64); return p; }
int main(void) { keep(); return 0; }
EOF
(cd "$work" && g++ -g -o terminate.bin terminate.cpp && g++ -g -o terminate_custom.bin terminate_custom.cpp \
  && gcc -g -o assert.bin assert.c && gcc -g -O0 -o double_free.bin double_free.c \
  && gcc -g -fstack-protector-all -o stack_smash.bin stack_smash.c \
  && gcc -g -fsanitize=address -fno-omit-frame-pointer -o asan_uaf.bin asan_uaf.c \
  && gcc -g -fsanitize=undefined -fno-sanitize-recover=undefined -o ubsan_overflow.bin ubsan_overflow.c \
  && gcc -g -fsanitize=address -fno-omit-frame-pointer -o lsan_leak.bin lsan_leak.c)
capture native_terminate ./terminate.bin
capture native_terminate_custom ./terminate_custom.bin
capture native_assert ./assert.bin
capture native_double_free ./double_free.bin
capture native_stack_smashing ./stack_smash.bin
capture native_asan_uaf ./asan_uaf.bin
capture native_ubsan_overflow ./ubsan_overflow.bin
capture native_lsan_leak ./lsan_leak.bin

# ---- Go fatal errors (not panics)
mkdir -p "$work/go_concurrent_map"
cat > "$work/go_concurrent_map/main.go" <<'EOF'
package main

func main() {
	m := map[int]int{}
	for i := 0; i < 8; i++ {
		go func() {
			for j := 0; ; j++ {
				m[j%16] = j
			}
		}()
	}
	for j := 0; ; j++ {
		m[j%16] = j
	}
}
EOF
(cd "$work/go_concurrent_map" && GO111MODULE=off go build -o ../go_concurrent_map.bin main.go)
capture go_concurrent_map ./go_concurrent_map.bin

# ---- Python fatal errors (faulthandler)
cat > "$work/fatal_segv.py" <<'EOF'
import ctypes
def crash():
    ctypes.string_at(0)
print("about to crash", flush=True)
crash()
EOF
capture py_fatal_segfault python3 -X faulthandler fatal_segv.py
cat > "$work/fatal_abort.py" <<'EOF'
import faulthandler, os
faulthandler.enable()
def handler():
    os.abort()
handler()
EOF
capture py_fatal_abort python3 fatal_abort.py

# ---- Node.js heap exhausted
cat > "$work/heap.js" <<'EOF'
const keep = [];
console.error("filling the heap");
for (;;) keep.push(new Array(100000).fill(Math.random()));
EOF
capture node_heap_oom node --max-old-space-size=24 heap.js

# ---- JVM: OutOfMemoryError and a fatal error with an hs_err report
mkdir -p "$work/java_oom" "$work/java_exit_oom" "$work/java_hs_err"
cat > "$work/java_oom/Main.java" <<'EOF'
import java.util.ArrayList;
public class Main {
    public static void main(String[] args) {
        ArrayList<long[]> keep = new ArrayList<>();
        while (true) keep.add(new long[1 << 20]);
    }
}
EOF
cp "$work/java_oom/Main.java" "$work/java_exit_oom/Main.java"
cat > "$work/java_hs_err/Main.java" <<'EOF'
import java.lang.reflect.Field;
import sun.misc.Unsafe;
public class Main {
    public static void main(String[] args) throws Exception {
        Field f = Unsafe.class.getDeclaredField("theUnsafe");
        f.setAccessible(true);
        Unsafe unsafe = (Unsafe) f.get(null);
        unsafe.putAddress(0, 0);
    }
}
EOF
capture java_oom java -Xmx32m java_oom/Main.java
# The JVM writes these reports on stdout (even with -XX:+DisplayVMOutputToStderr): restartd sees
# them when the command sends its stdout to stderr, as `sh -c 'exec java … 1>&2'` does here.
mkdir -p "$work/java_crash_oom"; cp "$work/java_oom/Main.java" "$work/java_crash_oom/Main.java"
capture java_exit_oom sh -c 'exec java -Xmx32m -XX:+ExitOnOutOfMemoryError java_exit_oom/Main.java 1>&2'
capture java_crash_oom sh -c 'exec java -Xmx32m -XX:+CrashOnOutOfMemoryError -XX:-CreateCoredumpOnCrash -XX:ErrorFile=hs_err_pid%p.log java_crash_oom/Main.java 1>&2'
capture java_hs_err sh -c 'exec java -XX:-CreateCoredumpOnCrash -XX:ErrorFile=hs_err_pid%p.log java_hs_err/Main.java 1>&2'

# ---- Rust stack overflow
cat > "$work/rust_stack_overflow.rs" <<'EOF'
fn depth(n: u64) -> u64 { let pad = [n; 64]; if n == u64::MAX { 0 } else { depth(n + 1) + pad[(n % 64) as usize] } }
fn main() { eprintln!("recursing"); println!("{}", depth(0)); }
EOF
(cd "$work" && rustc --edition 2021 -C opt-level=0 -o rust_stack_overflow rust_stack_overflow.rs 2>/dev/null)
capture rust_stack_overflow ./rust_stack_overflow

# ---- PHP (php-cli 8.2: log_errors to stderr, display_errors off so stdout stays out of it)
cat > "$work/uncaught.php" <<'EOF'
<?php
function connect(string $dsn) {
    throw new RuntimeException("database unreachable: $dsn");
}
connect("mysql:host=db");
EOF
cat > "$work/previous.php" <<'EOF'
<?php
namespace App;
class BootError extends \Exception {}
function boot() {
    try {
        json_decode("{", false, 512, JSON_THROW_ON_ERROR);
    } catch (\JsonException $e) {
        throw new BootError("config is not valid JSON", 3, $e);
    }
}
boot();
EOF
cat > "$work/memory.php" <<'EOF'
<?php
ini_set('memory_limit', '8M');
$keep = [];
while (true) { $keep[] = str_repeat('x', 1 << 16); }
EOF
cat > "$work/type_error.php" <<'EOF'
<?php
function port(int $p): int { return $p; }
port("eighty");
EOF
php_run() { php -d display_errors=0 -d log_errors=1 -d error_log= -d html_errors=0 "$@"; }
capture php_uncaught php_run uncaught.php
capture php_previous php_run previous.php
capture php_memory php_run memory.php
capture php_type_error php_run type_error.php

# ---- Elixir
cat > "$work/raise.exs" <<'EOF'
defmodule App.Worker do
  def start(opts), do: Keyword.fetch!(opts, :port)
end
App.Worker.start(host: "db")
EOF
cat > "$work/runtime.exs" <<'EOF'
defmodule App do
  def run, do: raise "queue closed"
end
App.run()
EOF
cat > "$work/arith.exs" <<'EOF'
defmodule Calc do
  def ratio(a, b), do: a / b
end
IO.puts(:stderr, "computing")
Calc.ratio(1, 0)
EOF
capture elixir_key_error elixir raise.exs
capture elixir_runtime_error elixir runtime.exs
capture elixir_arithmetic elixir arith.exs

# ---- other
capture plain_last_line sh -c 'echo "starting" >&2; echo "" >&2; echo "fatal: cannot open /etc/app.conf" >&2; echo "   " >&2; exit 1'
capture plain_access_log sh -c 'echo "Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ..." >&2; echo "127.0.0.1 - - [05/Dec/2026 07:33:52] \"GET / HTTP/1.1\" 200 -" >&2; echo "127.0.0.1 - - [05/Dec/2026 07:33:53] \"GET /favicon.ico HTTP/1.1\" 404 -" >&2; exit 1'
capture plain_info_after_error sh -c 'echo "ERROR: cannot connect to redis at 127.0.0.1:6379" >&2; echo "2026-12-05 07:40:01,123 INFO worker: shutting down" >&2; echo "[DEBUG] closing pool" >&2; echo "level=info msg=\"bye\"" >&2; exit 1'
# .NET and Deno are not installable from Debian's packages: dotnet_*.txt and deno_*.txt are
# written by hand from the runtimes' documented output (README.md names the sources).
printf '\033[31mTraceback (most recent call last):\033[0m\n  File "/app/x.py", line 1, in <module>\n\033[1;31mValueError\033[0m: \033[35mcoloured\033[0m\n' > "$here/ansi_python.txt"
echo "ansi_python: written"
