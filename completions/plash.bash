# bash completion for plash and plash-exec, written by `plash complete script bash`.
# Each Tab asks `plash complete line WORDS` for the candidates: its first line says
# whether host paths go with them (none, files, directories), the rest are words.

_plash() {
    local IFS=$'\n' cur=${COMP_WORDS[COMP_CWORD]}
    local -a reply
    reply=($("${COMP_WORDS[0]%-exec}" complete line "${COMP_WORDS[@]:0:COMP_CWORD+1}" 2>/dev/null)) || return 0
    COMPREPLY=($(compgen -W "${reply[*]:1}" -- "$cur"))
    case ${reply[0]} in
        files) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -f -- "$cur")) ;;
        directories) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -d -- "$cur")) ;;
    esac
    return 0
}
complete -F _plash plash plash-exec
