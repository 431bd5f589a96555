//! The global allocator: the system's, except that very large requests are
//! served by anonymous `mmap` with MAP_NORESERVE.
//!
//! Why: the protocol codecs size a `Vec` from an array count read off the
//! wire before they decode its elements. A request that claims two billion
//! elements asks for hundreds of GiB, which the system allocator refuses,
//! and a refused allocation aborts the process. Reserved-but-untouched
//! address space costs nothing, so the lie reaches the decoder, which then
//! fails on the missing bytes and answers with an error like any bad input.

use std::alloc::{GlobalAlloc, Layout, System};

/// From this size on, allocations are mapped rather than malloc'ed.
const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

pub struct GuardedAlloc;

unsafe fn map(layout: Layout) -> *mut u8 {
    if layout.align() > PAGE {
        return unsafe { System.alloc(layout) };
    }
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            layout.size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE {
            unsafe { map(layout) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE {
            unsafe { map(layout) } // fresh anonymous pages are zero
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE && layout.align() <= PAGE {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < HUGE && new_size < HUGE {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
