# fish completion for plash and plash-exec, written by `plash complete script fish`.
# Each Tab asks `plash complete line WORDS` for the candidates: its first line says
# whether host paths go with them (none, files, directories), the rest are words.

function __plash_complete
    set -l current (commandline -ct)
    set -l line (commandline -opc) "$current"
    set -l plash (string replace -r -- '-exec$' '' $line[1])
    set -l reply ($plash complete line $line 2>/dev/null); or return
    set -l paths $reply[1]
    set -e reply[1]
    test (count $reply) -gt 0; and printf '%s\n' $reply
    switch "$paths"
        case files
            __fish_complete_path "$current"
        case directories
            __fish_complete_directories "$current" ''
    end
end

complete -c plash -f -a '(__plash_complete)'
complete -c plash-exec -f -a '(__plash_complete)'
