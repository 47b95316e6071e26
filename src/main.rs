fn main() -> std::process::ExitCode {
    // Library errors (candle's) carry a backtrace whenever RUST_BACKTRACE is
    // set; a bad model file is a user's error and reads as one line. Panics
    // keep their backtraces (RUST_BACKTRACE), and RUST_LIB_BACKTRACE set by
    // the user wins.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    // The parser, the checker and the evaluator recurse over expressions;
    // the syntax limits nesting and length (`syntax::limits`), and this
    // stack holds what those limits allow with room to spare. Only the pages
    // a deep expression touches are ever committed.
    std::thread::Builder::new()
        .name("mpx".into())
        .stack_size(256 << 20)
        .spawn(mpx::cli::main)
        .expect("a thread for mpx")
        .join()
        .unwrap_or_else(|_| std::process::ExitCode::from(101))
}
