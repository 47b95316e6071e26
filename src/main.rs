fn main() -> std::process::ExitCode {
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
