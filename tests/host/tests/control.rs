use optprobe_host::control::{check_write, command_lines, parse, split_param, Command, ParseError, Target, WriteKind};

#[test]
fn accepts_the_documented_forms() {
    assert_eq!(
        parse(b"p:foo vfs_read+8\n"),
        Ok(Command::Add { name: Some("foo"), target: Target::Symbol { symbol: "vfs_read", offset: 8 } })
    );
    assert_eq!(
        parse(b"p vfs_read"),
        Ok(Command::Add { name: None, target: Target::Symbol { symbol: "vfs_read", offset: 0 } })
    );
    assert_eq!(
        parse(b"p:x  kernel_clone+0x10  "),
        Ok(Command::Add { name: Some("x"), target: Target::Symbol { symbol: "kernel_clone", offset: 16 } })
    );
    assert_eq!(
        parse(b"p:a 0xffff800080001000"),
        Ok(Command::Add { name: Some("a"), target: Target::Address(0xffff_8000_8000_1000) })
    );
    assert_eq!(parse(b"-:foo\n"), Ok(Command::Remove { name: "foo" }));
    assert_eq!(
        parse(b"p:n sym.cold+4"),
        Ok(Command::Add { name: Some("n"), target: Target::Symbol { symbol: "sym.cold", offset: 4 } })
    );
}

#[test]
fn rejects_bad_input_with_a_reason() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"", ParseError::Empty),
        (b"\n", ParseError::Empty),
        (b"   ", ParseError::Empty),
        (b"r:foo vfs_read", ParseError::UnknownCommand),
        (b"pfoo vfs_read", ParseError::UnknownCommand),
        (b"p:", ParseError::BadName),
        (b"p:1abc vfs_read", ParseError::BadName),
        (b"p:a-b vfs_read", ParseError::BadName),
        (b"p:foo", ParseError::MissingTarget),
        (b"p:foo vfs_read extra", ParseError::TrailingGarbage),
        (b"p:foo vfs_read+", ParseError::BadOffset),
        (b"p:foo vfs_read+-4", ParseError::BadOffset),
        (b"p:foo vfs_read+0xzz", ParseError::BadOffset),
        (b"p:foo vfs_read+99999999999999999999999", ParseError::BadOffset),
        (b"p:foo vfs_read+2", ParseError::Misaligned),
        (b"p:foo 0x1002", ParseError::Misaligned),
        (b"p:foo 0x", ParseError::BadAddress),
        (b"p:foo 0xg000", ParseError::BadAddress),
        (b"p:foo 9abc", ParseError::BadSymbol),
        (b"p:foo vfs$read", ParseError::BadSymbol),
        (b"-:", ParseError::BadName),
        (b"-:foo bar", ParseError::TrailingGarbage),
        (b"p:a x\np:b y", ParseError::UnknownCommand),
        (b"p:foo \xff\xfe", ParseError::UnknownCommand),
    ];
    for (input, err) in cases {
        assert_eq!(parse(input), Err(*err), "{:?}", String::from_utf8_lossy(input));
        assert!(!err.as_str().is_empty());
    }
    let long = [b'a'; 300];
    assert_eq!(parse(&long), Err(ParseError::TooLong));
    assert_eq!(ParseError::TooLong.errno(), 7);
    assert_eq!(ParseError::BadName.errno(), 22);
}

/// kprobe_events allows event names of up to 64 characters (MAX_EVENT_NAME_LEN);
/// so do we, for adds and removes alike.
#[test]
fn names_up_to_64_characters() {
    let name64 = "n".repeat(64);
    let name65 = "n".repeat(65);
    let add = |n: &str| format!("p:{n} vfs_read+16");
    assert_eq!(
        parse(add(&name64).as_bytes()),
        Ok(Command::Add { name: Some(&name64), target: Target::Symbol { symbol: "vfs_read", offset: 16 } })
    );
    assert_eq!(parse(add(&name65).as_bytes()), Err(ParseError::BadName));
    assert_eq!(parse(format!("-:{name64}").as_bytes()), Ok(Command::Remove { name: &name64 }));
    assert_eq!(parse(format!("-:{name65}").as_bytes()), Err(ParseError::BadName));
    assert!(ParseError::BadName.as_str().contains("1-64"));
}

#[test]
fn never_panics_on_random_bytes() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let alphabet = b"p:-+0x19af _\n\t.vfs_read;";
    for _ in 0..200_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 40) as usize;
        let mut buf = [0u8; 40];
        let mut s = state;
        for b in buf.iter_mut().take(len) {
            s = s.rotate_left(7) ^ 0x5851_f42d;
            *b = if s % 5 == 0 { (s >> 8) as u8 } else { alphabet[(s as usize >> 3) % alphabet.len()] };
        }
        let _ = parse(&buf[..len]);
        // A whole write is accepted only if every command line parses.
        if let Ok((_, n)) = check_write(&buf[..len]) {
            assert_eq!(command_lines(&buf[..len]).count(), n);
            assert!(command_lines(&buf[..len]).all(|l| parse(l).is_ok()));
        }
    }
}

#[test]
fn module_parameter_splits_on_semicolons() {
    let cmds: Vec<&[u8]> = split_param(b"p:a vfs_read; ;p:b kernel_clone+4;").collect();
    assert_eq!(cmds, vec![&b"p:a vfs_read"[..], &b"p:b kernel_clone+4"[..]]);
    assert_eq!(split_param(b"").count(), 0);
}

#[test]
fn writes_of_many_lines() {
    let add = b"p:a vfs_read+4\n# a comment\n\n  \np:b kernel_clone+8\n";
    assert_eq!(check_write(add), Ok((WriteKind::Add, 2)));
    let lines: Vec<&[u8]> = command_lines(add).collect();
    assert_eq!(lines, vec![&b"p:a vfs_read+4"[..], &b"p:b kernel_clone+8"[..]]);
    assert_eq!(check_write(b"-:a\n-:b"), Ok((WriteKind::Remove, 2)));
    assert_eq!(check_write(b"p:a vfs_read\n"), Ok((WriteKind::Add, 1)));
    // All or nothing: the first bad line is named, by number.
    assert_eq!(check_write(b"p:a vfs_read\np:b vfs_read+2\n"), Err((2, ParseError::Misaligned)));
    assert_eq!(check_write(b"p:a vfs_read\n-:b\n"), Err((2, ParseError::MixedCommands)));
    assert_eq!(check_write(b"\n# only a comment\n"), Err((1, ParseError::Empty)));
    assert_eq!(check_write(b""), Err((1, ParseError::Empty)));
    let mut long = b"p:a vfs_read\n".to_vec();
    long.extend_from_slice(&[b'a'; 300]);
    assert_eq!(check_write(&long), Err((2, ParseError::TooLong)));
    assert!(!ParseError::MixedCommands.as_str().is_empty());
}

/// Writes over a page reach the control file in pieces of at most a page, cut
/// anywhere. `split_piece` says how much of a piece (with the carried start
/// of its first line) to run now; the rest is the start of a line that the
/// next piece finishes.
#[test]
fn pieces_run_complete_lines_and_carry_the_rest() {
    use optprobe_host::control::split_piece;
    // The last piece of a write: everything runs, a final unterminated line too.
    assert_eq!(split_piece(b"p:a x\np:b y", false), Ok(11));
    assert_eq!(split_piece(b"p:a x\n", false), Ok(6));
    // A full page may continue: its unfinished last line waits.
    assert_eq!(split_piece(b"p:a x\np:b y", true), Ok(6));
    assert_eq!(split_piece(b"p:a x\n", true), Ok(6));
    assert_eq!(split_piece(b"p:a x\np:", true), Ok(6));
    // Not even one complete line yet: all of it waits, if a line can be that long.
    assert_eq!(split_piece(b"p:abc", true), Ok(0));
    let long = [b'p'; 300];
    assert_eq!(split_piece(&long, true), Err(ParseError::TooLong));
    let mut tail = b"p:a x\n".to_vec();
    tail.extend_from_slice(&[b'q'; 300]);
    assert_eq!(split_piece(&tail, true), Err(ParseError::TooLong));
}

/// A write cut into pieces at every possible place runs the same commands.
#[test]
fn every_cut_runs_the_same_lines() {
    use optprobe_host::control::split_piece;
    let input: Vec<u8> = (0..40).flat_map(|i| format!("p:n{i} vfs_read+{}\n", 4 * i).into_bytes()).collect();
    for page in [7usize, 16, 64, 100] {
        let mut carried: Vec<u8> = Vec::new();
        let mut ran: Vec<u8> = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let end = (at + page).min(input.len());
            let mut piece = carried.clone();
            piece.extend_from_slice(&input[at..end]);
            let full = end - at == page;
            let n = split_piece(&piece, full).unwrap();
            ran.extend_from_slice(&piece[..n]);
            carried = piece[n..].to_vec();
            at = end;
        }
        assert!(carried.is_empty());
        assert_eq!(ran, input, "page {page}");
    }
}

#[test]
fn parses_optimize_requests() {
    assert_eq!(
        parse(b"o vfs_read+0x20\n"),
        Ok(Command::Request { target: Target::Symbol { symbol: "vfs_read", offset: 32 }, on: true })
    );
    assert_eq!(parse(b"-o 0xffff800080001000"), Ok(Command::Request { target: Target::Address(0xffff_8000_8000_1000), on: false }));
    assert_eq!(parse(b"o"), Err(ParseError::MissingTarget));
    assert_eq!(parse(b"-o vfs_read junk"), Err(ParseError::TrailingGarbage));
    assert_eq!(parse(b"o vfs_read+2"), Err(ParseError::Misaligned));
    assert_eq!(parse(b"oo vfs_read"), Err(ParseError::UnknownCommand));
    assert_eq!(parse(b"o:x vfs_read"), Err(ParseError::UnknownCommand));
    assert_eq!(check_write(b"o a\n-o b+4\n"), Ok((WriteKind::Request, 2)));
    assert_eq!(check_write(b"o a\np b\n"), Err((2, ParseError::MixedCommands)));
    assert_eq!(check_write(b"-:x\n-o b\n"), Err((2, ParseError::MixedCommands)));
}
