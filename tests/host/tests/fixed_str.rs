use core::fmt::Write;
use optprobe_host::fixed_str::FixedStr;

#[test]
fn cuts_at_capacity_and_stays_terminated() {
    let s = FixedStr::<4>::from_bytes(b"abcdef");
    assert_eq!(s.as_bytes(), b"abc");
    // SAFETY: as_ptr points at N bytes, NUL-terminated.
    assert_eq!(unsafe { *s.as_ptr().add(3) }, 0);
    let mut w = FixedStr::<6>::new();
    assert!(w.is_empty());
    write!(w, "{}-{}", 12, 345).unwrap();
    assert_eq!(w.as_str(), "12-34");
    assert_eq!(w.len(), 5);
    write!(w, "more").unwrap();
    assert_eq!(w.as_str(), "12-34");
}

#[test]
fn a_cut_inside_utf8_reads_as_question_mark() {
    let s = FixedStr::<3>::from_bytes("é!".as_bytes()[..].as_ref());
    assert_eq!(s.as_bytes().len(), 2);
    assert_eq!(s.as_str(), "é");
    let s = FixedStr::<2>::from_bytes("é".as_bytes());
    assert_eq!(s.as_str(), "?");
}
