#pragma once
// The one durable file writer of neurn. Every file a run, a sweep or
// `neurn data prepare` finalizes goes through here, so that a crash, a
// SIGKILL or a power cut leaves either the previous file or the new one under
// the final name, never a mix, and a file reported as written survives a
// power cut:
//   replace: write <path>.tmp.<pid>.<n>.<kernel>, fsync it, rename over <path>, fsync the folder;
//   append:  one O_APPEND write of the whole record, then fsync.
// A process killed during a replace leaves its temporary file; the first
// replace of a process in a folder removes the temporaries there whose
// writer is gone (see remove_stale_temporaries).
// Every failure throws neurn::Error naming the path and the system's reason
// (a full disk reads "No space left on device"); a failed replace removes its
// temporary file and leaves the previous file untouched.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace neurn::io {

// Replaces `path` (creating its parent folders) with `n` bytes at `data`.
void write_file_atomic(const std::string& path, const void* data, size_t n);
void write_file_atomic(const std::string& path, std::string_view content);

// Appends `line` to `path` (created if missing) with one write() and fsyncs
// the file (and the folder when the file is new). When the file does not end
// in a newline (a torn line left by a disk-full or an editor), a newline is
// written first so the new line parses on its own.
void append_durable(const std::string& path, std::string_view line);

// The temporary a replace of `path` by process `pid` writes, its n-th:
// <path>.tmp.<pid>.<n>.<kernel>, where <kernel> (16 hex digits) names this
// boot of this machine's kernel and this process's pid namespace, so that a
// pid is only ever judged where it means the same process (a folder shared
// over NFS by Slurm tasks on several nodes, or by containers, holds
// temporaries of pids that this machine cannot see).
std::string temporary_path(const std::string& path, long pid, uint64_t n);

// Removes the temporaries in `folder` (not below it) left by writers that
// are gone: names of the form above with this kernel's <kernel> whose pid
// no longer exists. Temporaries of live processes, of other machines or pid
// namespaces, and every other file are left alone. Returns how many were
// removed; a folder that cannot be listed removes nothing. write_file_atomic
// calls it for the first file a process writes in a folder.
size_t remove_stale_temporaries(const std::string& folder);

// Fault injection for the crash tests (tests/experiments/test_faults.cpp):
// with NEURN_FAULT_KILL_AT=K in the environment, the K-th step (1-based,
// counted over the process) of the writers above raises SIGKILL. Steps of a
// replace: its temporary file half written, all written, fsynced, renamed;
// of an append: before its write, after it. With NEURN_FAULT_STEPS_FILE=F
// the number of steps is written to F at a normal exit. Returns the number
// of steps passed so far. (Read once per process; costs nothing otherwise.)
uint64_t fault_steps_passed();

}  // namespace neurn::io
