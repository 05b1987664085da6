# bash completion for plash and plash-exec, written by `plash complete script bash`.
# Each Tab asks `plash complete line WORDS` for the candidates: its first line says
# whether host paths go with them (none, files, directories), the rest are words.

_plash() {
    local IFS=$'\n' cur words cword
    local -a reply
    # bash splits --bind SRC:DST and NAME:TAG at ':' and '='; bash-completion joins them again.
    if declare -F _get_comp_words_by_ref >/dev/null; then
        _get_comp_words_by_ref -n =: -c cur -w words -i cword
    else
        cur=${COMP_WORDS[COMP_CWORD]} cword=$COMP_CWORD words=("${COMP_WORDS[@]}")
    fi
    reply=($("${words[0]%-exec}" complete line "${words[@]:0:cword+1}" 2>/dev/null)) || return 0
    COMPREPLY=($(compgen -W "${reply[*]:1}" -- "$cur"))
    case ${reply[0]} in
        files) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -f -- "$cur")) ;;
        directories) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -d -- "$cur")) ;;
    esac
    # What bash puts in place is the part after the last ':'.
    if declare -F __ltrim_colon_completions >/dev/null; then __ltrim_colon_completions "$cur"; fi
    return 0
}
complete -F _plash plash plash-exec
