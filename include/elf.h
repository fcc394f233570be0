/* bpflink cdef: the part of elfutils' libelf (<libelf.h>, <gelf.h>) that symbols.py reads ELF files with.
 * libelf checks every section and segment against the file's size; Python only walks what it hands back.
 * Structs are partial ("...;"): sizes and offsets come from the real headers. */
typedef struct Elf Elf;
typedef struct Elf_Scn Elf_Scn;
typedef struct { void *d_buf; size_t d_size; ...; } Elf_Data;
typedef struct { uint16_t e_type; uint16_t e_machine; uint64_t e_entry; uint64_t e_phoff; uint64_t e_shoff;
                 uint16_t e_phentsize; uint16_t e_phnum; uint16_t e_shentsize; uint16_t e_shnum; ...; } GElf_Ehdr;
typedef struct { uint32_t sh_name; uint32_t sh_type; uint64_t sh_flags; uint64_t sh_addr; uint64_t sh_offset;
                 uint64_t sh_size; uint32_t sh_link; uint32_t sh_info; uint64_t sh_entsize; ...; } GElf_Shdr;
typedef struct { uint32_t p_type; uint32_t p_flags; uint64_t p_offset; uint64_t p_vaddr; uint64_t p_filesz;
                 uint64_t p_memsz; ...; } GElf_Phdr;
typedef struct { uint32_t st_name; unsigned char st_info; unsigned char st_other; uint16_t st_shndx;
                 uint64_t st_value; uint64_t st_size; ...; } GElf_Sym;

#define EV_CURRENT ...
#define ELF_C_READ ...
#define ELF_K_ELF ...
#define ELFCLASS32 ...
#define ELFCLASS64 ...
#define PT_LOAD ...

unsigned int elf_version(unsigned int version);
Elf *elf_begin(int fd, int cmd, Elf *ref);
Elf *elf_memory(char *image, size_t size);
int elf_end(Elf *elf);
int elf_kind(Elf *elf);
int gelf_getclass(Elf *elf);
GElf_Ehdr *gelf_getehdr(Elf *elf, GElf_Ehdr *dst);
int elf_getshdrnum(Elf *elf, size_t *dst);
int elf_getshdrstrndx(Elf *elf, size_t *dst);
int elf_getphdrnum(Elf *elf, size_t *dst);
Elf_Scn *elf_nextscn(Elf *elf, Elf_Scn *scn);
size_t elf_ndxscn(Elf_Scn *scn);
GElf_Shdr *gelf_getshdr(Elf_Scn *scn, GElf_Shdr *dst);
GElf_Phdr *gelf_getphdr(Elf *elf, int ndx, GElf_Phdr *dst);
Elf_Data *elf_getdata(Elf_Scn *scn, Elf_Data *data);
Elf_Data *elf_rawdata(Elf_Scn *scn, Elf_Data *data);
GElf_Sym *gelf_getsym(Elf_Data *data, int ndx, GElf_Sym *dst);
char *elf_strptr(Elf *elf, size_t section, size_t offset);
int elf_errno(void);
const char *elf_errmsg(int error);

/* USDT (usdt.py): the .note.stapsdt notes. libelf converts each note's header to host order and bounds-checks
 * its name and descriptor against the section; the descriptor's bytes stay in the file's byte order. */
typedef struct { uint32_t n_namesz; uint32_t n_descsz; uint32_t n_type; ...; } GElf_Nhdr;
#define EI_DATA ...
#define ELFDATA2LSB ...
#define SHT_NOTE ...
#define PF_X ...
size_t gelf_getnote(Elf_Data *data, size_t offset, GElf_Nhdr *result, size_t *name_offset, size_t *desc_offset);
char *elf_getident(Elf *elf, size_t *dst);
