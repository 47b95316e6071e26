fn main() -> std::process::ExitCode {
    mpx::cli::main()
}
