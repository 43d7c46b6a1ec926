//! Reading a log holds the shared frame cache and the index, not a frame
//! per sealed segment: what a full scan leaves held does not grow with the
//! number of segments it read. Heap bytes are counted exactly by a global
//! allocator of this test binary's own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use wormlog::{Durability, Log, Options, Sealing};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// Safety: every call is passed to the system allocator unchanged; the
// counter only adds up the sizes it was asked for and gave back.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's contract for `alloc` is the system's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

const SEGMENTS: usize = 120;
const FRAME: usize = 16 << 10;
const CACHE: usize = 64 << 10;

#[test]
fn a_full_scan_holds_the_cache_not_a_frame_per_segment() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .durability(Durability::Buffered)
        .sealing(Sealing::Inline)
        .segment_bytes_max(64 << 10)
        .seal_frame_bytes(FRAME)
        .sealed_cache_bytes(CACHE);
    {
        let log = Log::open(dir.path(), options.clone()).unwrap();
        let mut i = 0u64;
        while log.segments().unwrap().len() <= SEGMENTS {
            log.append(format!(r#"{{"event":{i},"pad":"{:0>200}"}}"#, i).as_bytes())
                .unwrap();
            i += 1;
        }
        log.seal().unwrap();
    }
    let log = Log::open_read_only(dir.path(), options).unwrap();
    let sealed = log.segments().unwrap().iter().filter(|s| s.sealed).count();
    assert!(sealed >= SEGMENTS, "{sealed} sealed segments");
    let before = LIVE.load(Ordering::SeqCst);
    let mut records = 0u64;
    for r in log.read(..).unwrap() {
        r.unwrap();
        records += 1;
    }
    // And a point read in every segment, oldest first.
    for s in log.segments().unwrap() {
        log.get(s.first_seq).unwrap();
    }
    let held = LIVE.load(Ordering::SeqCst) - before;
    println!("held after the scan: {held} bytes");
    assert!(records > 10_000, "{records} records read");
    // The cache, the one frame kept beside it, and a margin for the index:
    // a frame per segment would be SEGMENTS * FRAME = 1.9 MiB.
    let bound = (CACHE + FRAME + (64 << 10)) as isize;
    assert!(
        held <= bound,
        "a scan of {sealed} sealed segments left {held} bytes held (bound {bound})"
    );
}
